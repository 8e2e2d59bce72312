"""PostgresTier beyond the contract: the server stopped mid-use and restarted, statement
timeouts, an unreachable server, foreign tables, the byte budget, threads, two clients
sharing a table, unlogged and logged tables."""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
import pytest
from psycopg import sql

from novacache.errors import (
    ConfigurationError,
    EntryTooLarge,
    StoreCorrupted,
    TierError,
    TierTimeout,
    TierUnavailable,
)
from novacache.tiers.postgres import AsyncPostgresTier, PostgresTier

from .pg_server import PostgresServer
from .test_postgres_contract import table  # the per-test table fixture
from .test_sqlite_glob import SCAN_KEYS, expected_scan, random_patterns

__all__ = ["table"]

T = TypeVar("T")


def eventually(call: Callable[[], T], attempts: int = 100, pause: float = 0.1) -> T:
    """``call()`` once it stops raising TierError (a bounded wait for a recovery)."""
    for _ in range(attempts - 1):
        try:
            return call()
        except TierError:
            time.sleep(pause)
    return call()


def wait_until(condition: Callable[[], bool], limit: float = 30) -> None:
    """Wait for ``condition()`` (a bound on a hang, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting after {limit}s")
        time.sleep(0.01)


@pytest.fixture
def tier(postgres_dsn: str, table: str) -> Iterator[PostgresTier]:
    tier = PostgresTier(postgres_dsn, table=table, timeout=2)
    yield tier
    tier.close()


def persistence(dsn: str, table: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT relpersistence FROM pg_class WHERE oid = to_regclass(%s)", (table,)
        ).fetchone()
    assert row is not None
    return str(row[0])


# -- faults --------------------------------------------------------------------------


def test_server_stopped_mid_use_then_pool_recovers(
    postgres_server: PostgresServer, table: str
) -> None:
    tier = PostgresTier(postgres_server.dsn, table=table, unlogged=False, timeout=1, max_size=4)
    tier.set_many({f"k{i}": b"v%d" % i for i in range(50)})
    stop = threading.Event()
    seen: list[BaseException] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            try:
                tier.get_many([f"k{i}" for i in range(50)])
                tier.get("k1")
                reads[0] += 1
            except BaseException as exc:  # collected, checked below
                seen.append(exc)
                time.sleep(0.02)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: reads[0] >= 20)
        postgres_server.stop("immediate")
        wait_until(lambda: len(seen) >= 3)
        with pytest.raises((TierUnavailable, TierTimeout), match=table):
            tier.set("down", b"x")
        with pytest.raises(TierUnavailable):
            tier.ping()
    finally:
        stop.set()
        for t in threads:
            t.join()
        if not postgres_server.running:
            postgres_server.start()
    assert seen
    assert all(isinstance(e, (TierUnavailable, TierTimeout)) for e in seen), seen
    # Back: the same tier object works again, and a logged table kept its rows.
    assert eventually(lambda: tier.get("k7")) == b"v7"
    assert tier.get_many([f"k{i}" for i in range(50)]) == {f"k{i}": b"v%d" % i for i in range(50)}
    tier.set("after", b"ok")
    assert tier.get("after") == b"ok"
    assert isinstance(tier.ping(), float)
    tier.close()


def test_async_tier_recovers_after_restart(postgres_server: PostgresServer, table: str) -> None:
    async def go() -> None:
        async with AsyncPostgresTier(
            postgres_server.dsn, table=table, unlogged=False, timeout=1
        ) as tier:
            await tier.set("k", b"v")
            postgres_server.stop("immediate")
            try:
                with pytest.raises((TierUnavailable, TierTimeout)):
                    await tier.get("k")
                with pytest.raises(TierUnavailable):
                    await tier.ping()
            finally:
                postgres_server.start()
            for _ in range(100):
                try:
                    got = await tier.get("k")
                    break
                except TierError:
                    await asyncio.sleep(0.1)
            else:
                got = await tier.get("k")
            assert got == b"v"

    asyncio.run(go())


def test_unreachable_server_is_a_tier_error(postgres_server: PostgresServer) -> None:
    port = postgres_server.port + 1 if postgres_server.port < 22000 else 15000
    dsn = f"host=127.0.0.1 port={port} user=nobody dbname=none connect_timeout=1"
    tier = PostgresTier(dsn, timeout=0.5)
    with pytest.raises((TierUnavailable, TierTimeout)):
        tier.get("k")
    with pytest.raises(TierUnavailable):
        tier.ping()
    tier.close()
    tier.close()


def test_statement_timeout_is_tier_timeout(postgres_dsn: str, table: str) -> None:
    tier = PostgresTier(postgres_dsn, table=table, timeout=0.3)
    tier.set("locked", b"v")
    other = psycopg.connect(postgres_dsn)
    try:
        with other.transaction():
            other.execute(
                sql.SQL("SELECT * FROM {} WHERE key = 'locked' FOR UPDATE").format(
                    sql.Identifier(tier.table)
                )
            )
            with pytest.raises(TierTimeout, match="set"):
                tier.set("locked", b"new")
            assert tier.get("locked") == b"v"  # readers are not blocked by a row lock
    finally:
        other.close()
    tier.set("locked", b"new")
    assert tier.get("locked") == b"new"
    tier.close()


def test_closed_tier_refuses_calls(tier: PostgresTier) -> None:
    tier.close()
    with pytest.raises(TierUnavailable, match="closed"):
        tier.get("k")
    with pytest.raises(TierUnavailable, match="closed"):
        tier.ping()


# -- tables --------------------------------------------------------------------------


def test_foreign_table_is_refused(postgres_dsn: str, table: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(table)))
    tier = PostgresTier(postgres_dsn, table=table)
    with pytest.raises(StoreCorrupted, match="not a novacache store"):
        tier.get("k")
    tier.close()


@pytest.mark.parametrize("bad", ["", "Upper", "a;drop table x", "a b", "1abc", "a.b.c", "x" * 64])
def test_bad_table_names_are_refused(postgres_dsn: str, bad: str) -> None:
    with pytest.raises(ConfigurationError):
        PostgresTier(postgres_dsn, table=bad)


def test_unlogged_by_default_logged_on_request(postgres_dsn: str, table: str) -> None:
    with PostgresTier(postgres_dsn, table=table) as tier:
        tier.migrate()
    assert persistence(postgres_dsn, table) == "u"
    logged = f"{table}_logged"
    try:
        with PostgresTier(postgres_dsn, table=logged, unlogged=False) as tier:
            tier.migrate()
        assert persistence(postgres_dsn, logged) == "p"
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(logged)))


def test_schema_qualified_table(postgres_dsn: str, table: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(table)))
    try:
        with PostgresTier(postgres_dsn, table=f"{table}.store") as tier:
            tier.set("k", b"v")
            assert tier.get("k") == b"v"
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(table)))


def test_two_clients_share_a_table_and_race_to_create_it(postgres_dsn: str, table: str) -> None:
    tiers = [PostgresTier(postgres_dsn, table=table) for _ in range(4)]
    barrier = threading.Barrier(len(tiers))
    errors: list[BaseException] = []

    def create(t: PostgresTier) -> None:
        try:
            barrier.wait()
            t.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(t,)) for t in tiers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    tiers[0].set("shared", b"from 0")
    assert tiers[3].get("shared") == b"from 0"
    assert tiers[2].delete("shared") is True
    assert tiers[1].get("shared") is None
    for t in tiers:
        t.close()


def test_scan_agrees_with_redis(tier: PostgresTier) -> None:
    """PostgreSQL's regex (~) reads the rendered patterns as Redis would match them."""
    tier.set_many(dict.fromkeys(SCAN_KEYS, b"."))
    for pattern in [*random_patterns(300), "[]", "[^]", "*", "\\*", "a\\"]:
        assert sorted(tier.scan(pattern)) == expected_scan(pattern), pattern


def test_dropped_table_is_created_again(tier: PostgresTier, postgres_dsn: str) -> None:
    tier.set("k", b"v")
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(tier.table)))
    with pytest.raises(TierError, match="does not exist"):
        tier.get("k")
    assert tier.get("k") is None  # the call after the error created the table again
    tier.set("k", b"again")
    assert tier.get("k") == b"again"


def test_overlapping_bulk_writes_do_not_deadlock(postgres_dsn: str, table: str) -> None:
    """Clients writing the same keys in different orders (rows are locked in key order)."""
    tier = PostgresTier(postgres_dsn, table=table, max_size=4, maxbytes=1 << 20, touch_batch=50)
    keys = [f"k{i}" for i in range(200)]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        rng = random.Random(n)
        try:
            barrier.wait()
            for _ in range(15):
                order = keys[:]
                rng.shuffle(order)
                tier.set_many({k: b"%d" % n for k in order})
                tier.get_many(order[:60])  # touches, flushed every 50 hits
                tier.delete_many(order[:10])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert all(v in {b"0", b"1", b"2", b"3"} for v in tier.get_many(keys).values())
    tier.close()


def test_keys_text_cannot_hold_are_escaped(tier: PostgresTier) -> None:
    """NUL and lone surrogates (which PostgreSQL text cannot hold) and U+FFFF (the escape)
    work as keys, never collide with their escaped spelling, and scan back as written."""
    keys = ["a\x00b", "a\uffff0b", "r-\udcff.csv", "\uffff", "\uffff\uffff", "\ud83d\ude00"]
    keys += ["\U0001f600", "a\ue7ffb", "plain"]
    for i, key in enumerate(keys):
        tier.set(key, str(i).encode())
    assert {k: tier.get(k) for k in keys} == {k: str(i).encode() for i, k in enumerate(keys)}
    assert tier.get_many(["ok", *keys]) == {k: str(i).encode() for i, k in enumerate(keys)}
    assert sorted(tier.scan()) == sorted(keys)
    assert sorted(tier.scan("a?b")) == ["a\x00b", "a\ue7ffb"]
    assert sorted(tier.scan("a[^a-z]*")) == ["a\x00b", "a\ue7ffb", "a\uffff0b"]
    assert list(tier.scan("r-\udcff*")) == ["r-\udcff.csv"]
    assert tier.ttl("a\x00b") == math.inf
    assert tier.delete("a\x00b") is True
    assert tier.get("a\x00b") is None
    assert tier.get("a\uffff0b") == b"1"
    assert tier.delete_many(keys) == len(keys) - 1


def test_threads_share_the_pool(postgres_dsn: str, table: str) -> None:
    tier = PostgresTier(postgres_dsn, table=table, max_size=3)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(40):
                tier.set(f"t{n}:{i}", b"%d" % i)
                assert tier.get(f"t{n}:{i}") == b"%d" % i
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(list(tier.scan("t*"))) == 320
    tier.close()


# -- the byte budget -----------------------------------------------------------------


@pytest.fixture
def budget(postgres_dsn: str, table: str) -> Iterator[PostgresTier]:
    tier = PostgresTier(
        postgres_dsn, table=table, maxbytes=10_000, evict_every=1, touch_batch=1000,
        touch_interval=3600,
    )  # fmt: skip
    yield tier
    tier.close()


def test_budget_evicts_least_recently_used(budget: PostgresTier) -> None:
    for i in range(10):
        budget.set(f"k{i}", bytes(1000))
    assert budget.usage() == (10, 10_000)
    assert budget.get("k0") is not None  # batched in memory, written before evicting
    budget.set("new", bytes(1000))
    assert budget.usage() == (10, 10_000)
    assert budget.get("k0") is not None
    assert budget.get("k1") is None
    budget.set("big", bytes(3500))
    assert budget.usage()[1] <= 10_000
    assert budget.get_many(["k2", "k3", "k4", "k5", "k6"]) == {"k6": bytes(1000)}


def test_expired_rows_go_first(budget: PostgresTier) -> None:
    budget.set("short", bytes(1000), ttl=0.05)
    for i in range(9):
        budget.set(f"k{i}", bytes(1000))
    time.sleep(0.1)
    budget.set("new", bytes(1000))
    assert len(budget.get_many([f"k{i}" for i in range(9)])) == 9
    assert budget.usage() == (10, 10_000)


def test_frame_over_budget_is_refused(budget: PostgresTier) -> None:
    budget.set("k", b"old")
    with pytest.raises(EntryTooLarge):
        budget.set("k", bytes(10_001))
    assert budget.get("k") == b"old"


def test_access_times_are_batched(budget: PostgresTier, postgres_dsn: str) -> None:
    budget.set("a", b"1")

    def atime() -> object:
        with psycopg.connect(postgres_dsn) as conn:
            query = sql.SQL("SELECT atime FROM {} WHERE key = 'a'").format(
                sql.Identifier(budget.table)
            )
            row = conn.execute(query).fetchone()
        assert row is not None
        return row[0]

    before = atime()
    time.sleep(0.05)
    budget.get("a")
    assert atime() == before
    budget.flush_access_times()
    after = atime()
    assert isinstance(after, type(before))
    assert after > before  # type: ignore[operator]


def test_tombstone_groups_counts_each_group_in_one_statement(
    tier: PostgresTier, postgres_dsn: str, table: str
) -> None:
    """PostgresTier.tombstone_groups (the engine's drop of coalesced invalidations): one
    statement for every group; each group's keys replaced by the tombstone and its live
    ones counted (a tombstone or an expired entry is none), a key two groups name counted
    in the first; the asyncio twin counts the same."""
    tomb = b"NT" + bytes(12)
    tier.set_many({f"k{i}": b"v" for i in range(6)})
    tier.set("old", b"v", ttl=0.05)
    tier.tombstone_many(["k5"], tomb, 60)
    time.sleep(0.1)  # "old" has expired
    counts = tier.tombstone_groups(
        [["k0", "k1", "absent"], ["k1", "k2", "old"], [], ["k3", "k3", "k5"]], tomb, 60
    )
    assert counts == [2, 1, 0, 1]
    assert tier.get_many([f"k{i}" for i in range(6)] + ["absent", "old"]) == {
        **dict.fromkeys(["k0", "k1", "k2", "k3", "k5", "absent", "old"], tomb),
        "k4": b"v",
    }
    assert 0 < (tier.ttl("absent") or 0) <= 60
    assert tier.tombstone_groups([], tomb, 60) == []
    assert tier.tombstone_groups([[], []], tomb, 60) == [0, 0]
    with pytest.raises(TypeError):
        tier.tombstone_groups([[3]], tomb, 60)  # type: ignore[list-item]
    with pytest.raises(ValueError):
        tier.tombstone_groups([["k4"]], tomb, -1)

    async def go() -> list[int]:
        a = AsyncPostgresTier(postgres_dsn, table=table, timeout=2)
        try:
            return await a.tombstone_groups([["k4"], ["k4", "k0", "k9"]], tomb, 60)
        finally:
            await a.close()

    assert asyncio.run(go()) == [1, 0]
