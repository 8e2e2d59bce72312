"""SQLiteTier beyond the contract: restart, threads, processes, a killed writer, corrupt
and foreign files, a full disk, the LRU byte budget and its batched access times."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from novacache.errors import (
    ConfigurationError,
    EntryTooLarge,
    StoreCorrupted,
    StoreFull,
    TierTimeout,
    TierUnavailable,
)
from novacache.tiers.sqlite import AsyncSQLiteTier, SQLiteTier

from .test_sqlite_contract import ManualClock


def frame_for(key: str, size: int = 64) -> bytes:
    """A frame derived from its key, so a torn or misplaced row is detectable."""
    seed = hashlib.sha256(key.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def rows_of(path: Path) -> dict[str, tuple[bytes, int, float | None, float]]:
    """The raw rows of a store file (frame, size, expiry, access time), read with sqlite3."""
    with sqlite3.connect(path) as conn:
        return {
            k: (f, n, e, a)
            for k, f, n, e, a in conn.execute(
                "SELECT e.key, e.frame, e.size, e.expires, a.atime FROM novacache_entries AS e"
                " LEFT JOIN novacache_access AS a ON a.id = e.id"
            )
        }


def assert_consistent(path: Path) -> None:
    """The file passes integrity_check, the trigger-kept usage equals the rows, and every
    entry has exactly one access-time row."""
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        count, total = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM novacache_entries"
        ).fetchone()
        assert conn.execute("SELECT entries, bytes FROM novacache_stats").fetchone() == (
            count,
            total,
        )
        bad = conn.execute("SELECT count(*) FROM novacache_entries WHERE size != length(frame)")
        assert bad.fetchone() == (0,)
        joined = conn.execute(
            "SELECT count(*) FROM novacache_access AS a JOIN novacache_entries AS e ON e.id = a.id"
        ).fetchone()
        assert joined == (count,)
        assert conn.execute("SELECT count(*) FROM novacache_access").fetchone() == (count,)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# -- restart -------------------------------------------------------------------------


def test_reopened_store_keeps_frames_and_expiry(path: Path, clock: ManualClock) -> None:
    with SQLiteTier(path, clock=clock) as tier:
        tier.set_many({f"k{i}": frame_for(f"k{i}") for i in range(100)})
        tier.set("short", b"s", ttl=10)
        tier.set("long", b"l", ttl=1000)
    clock.advance(20)
    with SQLiteTier(path, clock=clock) as tier:
        assert tier.get_many([f"k{i}" for i in range(100)]) == {
            f"k{i}": frame_for(f"k{i}") for i in range(100)
        }
        assert tier.get("short") is None
        assert tier.get("long") == b"l"
        left = tier.ttl("long")
        assert left is not None
        assert 979 < left <= 980
        assert tier.usage().entries == 102  # the expired row is purged lazily
        assert tier.purge_expired() == 1
        assert tier.usage().entries == 101
    assert_consistent(path)


def test_vacuum_keeps_access_times_attached(path: Path, clock: ManualClock) -> None:
    with SQLiteTier(path, clock=clock, maxbytes=4000) as tier:
        for i in range(4):
            tier.set(f"k{i}", frame_for(f"k{i}", 1000))
            clock.advance(1)
        tier.delete("k1")
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("VACUUM")
    conn.close()
    assert_consistent(path)
    with SQLiteTier(path, clock=clock, maxbytes=4000) as tier:
        tier.set("new1", frame_for("new1", 1000))
        tier.set("new2", frame_for("new2", 1000))  # over budget: the oldest (k0) goes
        assert tier.get_many(["k0", "k2", "k3"]) == {
            "k2": frame_for("k2", 1000),
            "k3": frame_for("k3", 1000),
        }


def test_closed_tier_refuses_calls(path: Path) -> None:
    tier = SQLiteTier(path)
    tier.close()
    with pytest.raises(TierUnavailable, match="closed"):
        tier.get("k")
    with pytest.raises(TierUnavailable):
        tier.set("k", b"v")


def test_unopenable_path_is_unavailable_and_named(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "store.db"
    with pytest.raises(TierUnavailable, match=re.escape(str(missing.parent))):
        SQLiteTier(missing)


def test_bad_options_are_refused(path: Path) -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigurationError):
            SQLiteTier(path, maxbytes=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        SQLiteTier(path, pragmas={"max_page_count; DROP TABLE x": 1})
    with pytest.raises(ConfigurationError):
        SQLiteTier(path, pragmas={"journal_mode": "wal; drop"})
    with pytest.raises(TypeError):
        SQLiteTier(path).get(b"bytes key")  # type: ignore[arg-type]


# -- threads and processes -----------------------------------------------------------


def test_threads_burst_keeps_the_store_consistent(path: Path) -> None:
    tier = SQLiteTier(path, maxbytes=200 * 64, touch_batch=7)
    workers = 8
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []
    old_interval = sys.getswitchinterval()

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(150):
                key = f"k{(n * 37 + i) % 300}"
                tier.set(key, frame_for(key))
                got = tier.get(key)
                assert got is None or got == frame_for(key)
                if i % 5 == 0:
                    tier.delete(f"k{(n + i) % 300}")
                if i % 11 == 0:
                    many = tier.get_many([f"k{j}" for j in range(0, 300, 7)])
                    assert all(v == frame_for(k) for k, v in many.items())
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old_interval)
    assert errors == []
    usage = tier.usage()
    assert usage.bytes <= 200 * 64
    for key in tier.scan("k*"):
        assert tier.get(key) == frame_for(key)
    tier.close()
    assert_consistent(path)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_opens_its_own_connections(path: Path) -> None:
    tier = SQLiteTier(path)
    tier.set("parent", b"p")  # the parent now holds an open connection
    pid = os.fork()
    if pid == 0:  # the child: never use (or close) the parent's connection
        code = 1
        try:
            tier.set("child", b"c")
            code = 0 if tier.get_many(["parent", "child"]) == {"parent": b"p", "child": b"c"} else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert tier.get("child") == b"c"
    tier.set("parent:after", b"p2")
    assert tier.get("parent:after") == b"p2"
    tier.close()
    assert_consistent(path)


WRITER = textwrap.dedent(
    """
    import hashlib, sys
    from novacache.tiers.sqlite import SQLiteTier

    def frame_for(key, size):
        seed = hashlib.sha256(key.encode()).digest()
        return (seed * (size // len(seed) + 1))[:size]

    path, name, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    maxbytes = int(sys.argv[5]) or None
    tier = SQLiteTier(path, timeout=30, maxbytes=maxbytes, touch_batch=16)
    print("ready", flush=True)
    i = 0
    while count < 0 or i < count:
        keys = [f"shared:{(i + j) % 50}" for j in range(5)] + [f"{name}:{i}"]
        tier.set_many({k: frame_for(k, size) for k in keys})
        for k, v in tier.get_many(keys[:3]).items():
            assert v == frame_for(k, size), k
        i += 1
    tier.close()
    """
)


def spawn_writer(
    path: Path, name: str, count: int, size: int = 64, maxbytes: int = 0
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), name, str(count), str(size), str(maxbytes)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_processes_share_one_file(path: Path) -> None:
    tier = SQLiteTier(path, timeout=30)
    writers = [spawn_writer(path, f"p{n}", 200) for n in range(2)]
    # This process writes and reads at the same time as the two others.
    for i in range(200):
        tier.set(f"parent:{i}", frame_for(f"parent:{i}"))
        got = tier.get(f"shared:{i % 50}")
        assert got is None or got == frame_for(f"shared:{i % 50}")
    for proc in writers:
        assert proc.wait(timeout=60) == 0
    keys = set(tier.scan())
    assert {f"p0:{i}" for i in range(200)} <= keys
    assert {f"p1:{i}" for i in range(200)} <= keys
    assert {f"parent:{i}" for i in range(200)} <= keys
    assert len(keys) == 650
    assert all(v == frame_for(k) for k, v in tier.get_many(keys).items())
    tier.close()
    assert_consistent(path)


def test_processes_evicting_under_one_budget(path: Path) -> None:
    budget = 120 * 64
    tier = SQLiteTier(path, timeout=30, maxbytes=budget)
    writers = [spawn_writer(path, f"p{n}", 150, maxbytes=budget) for n in range(2)]
    for i in range(150):
        tier.set(f"parent:{i}", frame_for(f"parent:{i}"))
        tier.get(f"shared:{i % 50}")
    for proc in writers:
        assert proc.wait(timeout=60) == 0
    assert tier.usage().bytes <= budget
    keys = list(tier.scan())
    assert 0 < len(keys) <= 120
    assert all(v == frame_for(k) for k, v in tier.get_many(keys).items())
    tier.close()
    assert_consistent(path)


def test_writer_killed_mid_write_leaves_no_torn_row(path: Path) -> None:
    SQLiteTier(path).close()
    proc = spawn_writer(path, "victim", -1, size=64 * 1024)
    observer = SQLiteTier(path)
    deadline = time.monotonic() + 30  # a bound on a hang, not a timing assertion
    while observer.usage().entries < 30 and proc.poll() is None:
        assert time.monotonic() < deadline, "the writer committed nothing"
        time.sleep(0.01)
    assert proc.poll() is None, "the writer died by itself"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    observer.close()
    assert_consistent(path)
    rows = rows_of(path)
    assert rows
    for key, (frame, size, _, _) in rows.items():
        assert frame == frame_for(key, 64 * 1024)
        assert size == len(frame)
    with SQLiteTier(path) as tier:
        assert tier.usage().entries == len(rows)
        tier.set("after", b"ok")
        assert tier.get("after") == b"ok"


# -- corrupt, foreign and newer files ------------------------------------------------


def test_garbage_file_is_refused_naming_the_path(path: Path) -> None:
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    with pytest.raises(StoreCorrupted, match=re.escape(str(path))):
        SQLiteTier(path)
    assert path.read_bytes() == garbage  # untouched


def test_foreign_database_is_refused_and_left_untouched(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreCorrupted, match="not a novacache store"):
        SQLiteTier(path)
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists()


def test_newer_schema_is_refused(path: Path) -> None:
    SQLiteTier(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreCorrupted, match="schema version 99"):
        SQLiteTier(path)


def test_rebuild_moves_a_bad_file_aside(path: Path) -> None:
    garbage = b"definitely not sqlite" * 100
    path.write_bytes(garbage)
    with SQLiteTier(path, rebuild=True) as tier:
        assert list(tier.scan()) == []
        tier.set("k", b"v")
        assert tier.get("k") == b"v"
    aside = [p for p in path.parent.iterdir() if p.name.startswith("store.db.corrupt-")]
    assert len(aside) == 1
    assert aside[0].read_bytes() == garbage


def damage(path: Path) -> None:
    """Overwrite every page after the header page with garbage."""
    with sqlite3.connect(path) as conn:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    data[page:] = os.urandom(len(data) - page)
    path.write_bytes(bytes(data))


def open_and_read_all(path: Path) -> None:
    """Open the store and read every key (the header page is intact, so the damage shows
    at the open or at the first read)."""
    tier = SQLiteTier(path)
    try:
        tier.get_many([f"k{i}" for i in range(200)])
    finally:
        tier.close()


def test_damaged_pages_raise_store_corrupted_never_crash(path: Path) -> None:
    with SQLiteTier(path) as tier:
        tier.set_many({f"k{i}": frame_for(f"k{i}", 2000) for i in range(200)})
    damage(path)
    with pytest.raises(StoreCorrupted, match=re.escape(str(path))):
        open_and_read_all(path)
    with pytest.raises(StoreCorrupted, match=r"damaged|malformed"):
        SQLiteTier(path, verify=True)
    with SQLiteTier(path, verify=True, rebuild=True) as tier:
        assert tier.get("k1") is None
        tier.set("k1", b"fresh")
        assert tier.get("k1") == b"fresh"


# -- full disk -----------------------------------------------------------------------


def fill_until_full(tier: SQLiteTier, stored: dict[str, bytes]) -> None:
    """Write 4000-byte frames (recording each one written) until the tier refuses one."""
    for i in range(1000):
        key = f"k{i}"
        tier.set(key, frame_for(key, 4000))
        stored[key] = frame_for(key, 4000)


def test_full_disk_raises_store_full_and_loses_nothing(path: Path) -> None:
    # max_page_count makes SQLite report SQLITE_FULL exactly as on a full disk.
    tier = SQLiteTier(path, pragmas={"max_page_count": 64})
    stored: dict[str, bytes] = {}
    with pytest.raises(StoreFull, match=re.escape(str(path))):
        fill_until_full(tier, stored)
    assert len(stored) > 5
    with pytest.raises(StoreFull):
        tier.set_many({f"batch{i}": frame_for(f"batch{i}", 4000) for i in range(20)})
    assert tier.get_many(stored) == stored
    assert tier.get("batch0") is None  # the failed batch left nothing behind
    assert tier.delete_many(list(stored)[:5]) == 5
    tier.set("after", b"small")  # room again once something is deleted
    assert tier.get("after") == b"small"
    tier.close()
    assert_consistent(path)


def test_busy_writer_gives_tier_timeout_and_reads_go_on(path: Path) -> None:
    tier = SQLiteTier(path, timeout=0.05)
    tier.set("k", b"v")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(TierTimeout, match="set"):
            tier.set("k2", b"v2")
        assert tier.get("k") == b"v"  # WAL: readers do not wait for the writer
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    tier.set("k2", b"v2")
    assert tier.get("k2") == b"v2"
    tier.close()


# -- the byte budget -----------------------------------------------------------------


@pytest.fixture
def budget(path: Path, clock: ManualClock) -> Iterator[SQLiteTier]:
    tier = SQLiteTier(path, clock=clock, maxbytes=10 * 1000, touch_batch=1000, touch_interval=3600)
    yield tier
    tier.close()


def fill(tier: SQLiteTier, clock: ManualClock, n: int = 10) -> None:
    for i in range(n):
        tier.set(f"k{i}", frame_for(f"k{i}", 1000))
        clock.advance(1)


def test_budget_evicts_least_recently_used(budget: SQLiteTier, clock: ManualClock) -> None:
    fill(budget, clock)
    assert budget.usage() == (10, 10_000)
    assert budget.get("k0") is not None  # k0 becomes the most recently used
    clock.advance(1)
    budget.set("new", frame_for("new", 1000))
    assert budget.get("k0") is not None
    assert budget.get("k1") is None  # the least recently used went
    assert budget.usage().bytes <= 10_000
    budget.set("big", frame_for("big", 3500))
    assert budget.usage().bytes <= 10_000
    # 3500 bytes to free: k2, k3, k4 and k5 (the oldest after k1) make 4000.
    assert budget.get_many(["k2", "k3", "k4", "k5", "k6"]) == {"k6": frame_for("k6", 1000)}
    assert budget.get("big") == frame_for("big", 3500)


def test_expired_rows_go_before_live_ones(budget: SQLiteTier, clock: ManualClock) -> None:
    fill(budget, clock, 9)
    budget.set("short", frame_for("short", 1000), ttl=5)
    clock.advance(10)
    budget.set("new", frame_for("new", 1000))
    assert budget.get_many([f"k{i}" for i in range(9)]) == {
        f"k{i}": frame_for(f"k{i}", 1000) for i in range(9)
    }
    assert budget.usage().entries == 10


def test_access_times_are_batched_not_written_per_read(
    budget: SQLiteTier, path: Path, clock: ManualClock
) -> None:
    fill(budget, clock)
    before = rows_of(path)["k0"][3]
    clock.advance(100)
    for _ in range(5):
        assert budget.get("k0") is not None
    assert rows_of(path)["k0"][3] == before  # nothing written yet
    budget.flush_access_times()
    assert rows_of(path)["k0"][3] == clock.now


def test_batch_fills_and_flushes(path: Path, clock: ManualClock) -> None:
    with SQLiteTier(
        path, clock=clock, maxbytes=1 << 20, touch_batch=3, touch_interval=3600
    ) as tier:
        tier.set_many({"a": b"1", "b": b"2", "c": b"3"})
        clock.advance(5)
        tier.get("a")
        tier.get_many(["b"])
        assert {k: r[3] for k, r in rows_of(path).items()} == {"a": 1.7e9, "b": 1.7e9, "c": 1.7e9}
        tier.get("c")  # the third touch fills the batch
        assert {k: r[3] for k, r in rows_of(path).items()} == {k: 1.7e9 + 5 for k in "abc"}


def test_pending_access_times_count_before_eviction(budget: SQLiteTier, clock: ManualClock) -> None:
    fill(budget, clock)
    budget.get("k0")  # only in memory: the batch is far from full
    clock.advance(1)
    budget.set("new", frame_for("new", 1000))
    assert budget.get("k0") is not None
    assert budget.get("k1") is None


def test_access_times_written_at_close(path: Path, clock: ManualClock) -> None:
    tier = SQLiteTier(path, clock=clock, maxbytes=1 << 20, touch_batch=1000, touch_interval=3600)
    tier.set("a", b"1")
    clock.advance(42)
    tier.get("a")
    tier.close()
    assert rows_of(path)["a"][3] == clock.now


def test_reads_never_wait_for_a_writer_to_record_access_times(
    path: Path, clock: ManualClock
) -> None:
    tier = SQLiteTier(path, clock=clock, maxbytes=1 << 20, touch_batch=1, timeout=3600)
    tier.set("a", b"1")
    clock.advance(7)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    got: list[bytes | None] = []
    reader = threading.Thread(target=lambda: got.append(tier.get("a")))
    reader.start()
    reader.join(timeout=30)  # a bound on a hang (the tier would wait up to an hour)
    blocker.execute("ROLLBACK")
    blocker.close()
    reader.join()
    assert got == [b"1"]
    assert rows_of(path)["a"][3] == clock.now - 7  # not written while the lock was held
    tier.flush_access_times()  # ...but kept, and written now
    assert rows_of(path)["a"][3] == clock.now
    tier.close()


def test_frame_over_budget_is_refused_and_old_value_kept(budget: SQLiteTier) -> None:
    budget.set("k", b"old")
    with pytest.raises(EntryTooLarge):
        budget.set("k", b"x" * 10_001)
    assert budget.get("k") == b"old"
    assert budget.usage() == (1, 3)


def test_set_many_over_budget_keeps_the_newest(budget: SQLiteTier, clock: ManualClock) -> None:
    fill(budget, clock)
    budget.set_many({f"n{i}": frame_for(f"n{i}", 1000) for i in range(4)})
    got = budget.get_many([f"n{i}" for i in range(4)])
    assert got == {f"n{i}": frame_for(f"n{i}", 1000) for i in range(4)}
    assert budget.usage() == (10, 10_000)


# -- async twin beyond the contract --------------------------------------------------


def test_async_scan_pages_and_usage(path: Path) -> None:
    async def go() -> None:
        async with await AsyncSQLiteTier.open(path, workers=2) as tier:
            await tier.set_many({f"s:{i}": b"." for i in range(2500)})
            keys = [k async for k in tier.scan("s:*")]
            assert sorted(keys) == sorted(f"s:{i}" for i in range(2500))
            assert await tier.usage() == (2500, 2500)
            with pytest.raises(TypeError):
                await tier.set("k", "str")  # type: ignore[arg-type]
        await tier.close()  # a second close is harmless

    asyncio.run(go())


def test_tombstone_groups_counts_each_group_in_one_transaction(tmp_path: Path) -> None:
    """SQLiteTier.tombstone_groups (the engine's drop of coalesced invalidations): each
    group's keys replaced by the tombstone and its live ones counted, a key two groups
    name counted in the first; the asyncio twin does it in one worker-thread call."""
    tomb = b"NT" + bytes(12)
    with SQLiteTier(tmp_path / "g.db") as t:
        t.set_many({f"k{i}": b"v" for i in range(5)})
        assert t.tombstone_groups([["k0", "k1", "absent"], ["k1", "k2"], []], tomb, 60) == [
            2,
            1,
            0,
        ]
        assert t.get_many([f"k{i}" for i in range(5)]) == {
            **dict.fromkeys(["k0", "k1", "k2"], tomb),
            "k3": b"v",
            "k4": b"v",
        }
        assert t.tombstone_groups([], tomb, 60) == []
        with pytest.raises(TypeError):
            t.tombstone_groups([[3]], tomb, 60)  # type: ignore[list-item]
        with pytest.raises(ValueError):
            t.tombstone_groups([["k3"]], tomb, -1)

    async def go() -> list[int]:
        a = await AsyncSQLiteTier.open(tmp_path / "g.db")
        try:
            return await a.tombstone_groups([["k3"], ["k3", "k4", "k0"]], tomb, 60)
        finally:
            await a.close()

    assert asyncio.run(go()) == [1, 1]
