"""Tags on a PostgreSQL store: the tag table beside the store's table (``<table>_tags``),
shared by every process using the store, sync and async, against the real server."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from novacache import LocalCache
from novacache.errors import PartialWrite
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.manager.pgtags import PostgresTagIndex, tag_table
from novacache.tiers import AsyncPostgresTier, PostgresTier

from . import _procs
from ._support import live, prefix


def _table() -> str:
    return f"tg_{prefix()[2:-1]}"


def _rows(dsn: str, table: str) -> list[tuple[str, str]]:
    """The (tag, key) rows of the tag table of the store ``table``, read directly."""
    with psycopg.connect(dsn) as conn:
        cursor = conn.execute(f"SELECT tag, key FROM {tag_table(table)} ORDER BY tag, key")
        return [(r[0], r[1]) for r in cursor.fetchall()]


@pytest.fixture
def pg_manager(postgres_dsn: str) -> Iterator[CacheManager]:
    """L1 + a PostgresTier on a fresh table (no Redis, no SQLite)."""
    store = PostgresTier(postgres_dsn, table=_table(), timeout=5)
    with CacheManager(local=LocalCache(1000), store=store) as m:
        yield m


def test_tags_on_l1_and_postgres(pg_manager: CacheManager, postgres_dsn: str) -> None:
    m = pg_manager
    store = m.store
    assert isinstance(store, PostgresTier)
    m.set("vm:1", 1, tags=["tenant:a", "host:7"])
    m.set("vm:2", 2, tags=["tenant:a"])
    m.set_many({"vm:3": 3, "vm:4": 4}, tags=["tenant:b"])
    m.set("vm:5", 5)
    (index,) = m._indexes()
    assert isinstance(index, PostgresTagIndex)
    assert index.table == f"{store.table}_tags"
    assert _rows(postgres_dsn, store.table) == [
        ("host:7", "vm:1"),
        ("tenant:a", "vm:1"),
        ("tenant:a", "vm:2"),
        ("tenant:b", "vm:3"),
        ("tenant:b", "vm:4"),
    ]
    assert m.invalidate_tags(["tenant:a"]) == 2
    assert m.get_many(["vm:1", "vm:2", "vm:3", "vm:4", "vm:5"]) == {"vm:3": 3, "vm:4": 4, "vm:5": 5}
    assert live(store.get_many(["vm:1", "vm:2"])) == {}  # gone from L3, not only from L1
    assert m.invalidate_tags(["host:7"]) == 0  # vm:1 is already gone
    assert m.invalidate_tags(["tenant:b", "nobody"]) == 2
    assert m.get("vm:3") is None
    assert m.invalidate_tags([]) == 0
    assert _rows(postgres_dsn, store.table) == []  # every invalidated tag is dropped


def test_bulk_tagging_is_one_statement_per_call(
    pg_manager: CacheManager, postgres_dsn: str
) -> None:
    m = pg_manager
    (index,) = m._indexes()
    assert isinstance(index, PostgresTagIndex)
    statements: list[str] = []
    run = index._run

    def counted(op: str, query: Any, params: Any) -> list[Any]:
        statements.append(op)
        return run(op, query, params)

    index._run = counted  # type: ignore[method-assign]  # counts calls to the real index
    keys = {f"user:{i}": i for i in range(300)}
    m.set_many(keys, ttl=60, tags=["org:1", "org:2", "plan:free"])
    assert statements == ["add"]  # 900 (tag, key) pairs in one INSERT
    assert m.store is not None
    assert len(_rows(postgres_dsn, m.store.table)) == 900  # type: ignore[attr-defined]
    statements.clear()
    assert m.invalidate_tags(["org:1", "plan:free"]) == 300
    assert statements == ["members", "drop"]  # every tag at once, both ways
    assert m.get_many(list(keys)) == {}
    assert live(m.store.get_many(list(keys))) == {}


def test_two_managers_share_the_postgres_index(postgres_dsn: str) -> None:
    table = _table()

    def manager() -> CacheManager:
        return CacheManager(
            local=LocalCache(100), store=PostgresTier(postgres_dsn, table=table, timeout=5)
        )

    with manager() as a, manager() as b:
        a.set("vm:1", "v", tags=["t"])
        b.set("vm:2", "w", tags=["t"])
        assert b.invalidate_tags(["t"]) == 2
        assert b.get("vm:1") is None
        assert a.store is not None
        assert live(a.store.get_many(["vm:1", "vm:2"])) == {}
        a.set("vm:3", "x", tags=["u"])
        a.clear()  # clears the tag table too
        assert _rows(postgres_dsn, table) == []


def test_another_process_tags_and_this_one_invalidates(postgres_dsn: str) -> None:
    table = _table()
    keys = [f"doc:{i}" for i in range(25)]
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(
        target=_procs.tag_in_postgres,
        args=(theirs, postgres_dsn, table, keys, "project:9"),
        daemon=True,
    )
    child.start()
    try:
        assert ours.poll(20), "the child did not write within 20 s"
        assert ours.recv() == sorted(keys)  # stored by the other process
        store = PostgresTier(postgres_dsn, table=table, timeout=5)
        with CacheManager(local=LocalCache(100), store=store) as m:
            m.set("mine", "kept", tags=["other"])
            assert m.invalidate_tags(["project:9"]) == 25
            assert live(store.get_many(keys)) == {}
            assert m.get("mine") == "kept"
        ours.send(("read",))
        assert ours.poll(10)
        assert ours.recv() == {}  # the other process reads none of them any more
        ours.send(("stop",))
        assert ours.poll(10)
        assert ours.recv() == "bye"
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0


def test_index_rows_expire_with_their_entries(pg_manager: CacheManager) -> None:
    m = pg_manager
    m.set("short", 1, ttl=0.3, tags=["t"])
    m.set("long", 2, ttl=60, tags=["t"])
    m.set("forever", 3, tags=["t"])
    (index,) = m._indexes()
    index.add(("t",), ["long"], 0.2)  # a shorter TTL never shortens a row
    deadline = time.monotonic() + 5
    while index.members(("t",)) != {"long", "forever"} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert index.members(("t",)) == {"long", "forever"}  # on the server's clock
    assert m.invalidate_tags(["t"]) == 2


def test_schema_qualified_store_table(postgres_dsn: str) -> None:
    schema = f"s_{prefix()[2:-1]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    store = PostgresTier(postgres_dsn, table=f"{schema}.items", timeout=5)
    with CacheManager(local=LocalCache(10), store=store) as m:
        m.set("a", 1, tags=["t"])
        assert _rows(postgres_dsn, f"{schema}.items") == [("t", "a")]
        assert m.invalidate_tags(["t"]) == 1
    assert tag_table("x" * 63) == "x" * 58 + "_tags"  # within PostgreSQL's 63 bytes


def test_server_down_is_reported_and_the_index_reconnects(postgres_dsn: str) -> None:
    """A lost index connection is a reported failure of the "store" slot, not a crash;
    the next call opens a new connection."""
    store = PostgresTier(postgres_dsn, table=_table(), timeout=5)
    with CacheManager(local=LocalCache(10), store=store) as m:
        m.set("a", 1, tags=["t"])
        (index,) = m._indexes()
        assert isinstance(index, PostgresTagIndex)
        assert index._conn is not None
        pid = index._conn.info.backend_pid
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(PartialWrite) as info:
            m.set("b", 2, tags=["t"])
        assert set(info.value.failed) == {"store"}
        assert store.get("b") is not None  # the value was written; its tag was not
        m.set("c", 3, tags=["t"])  # the index connected again
        assert m.invalidate_tags(["t"]) == 2  # "a" and "c": the report said "b" is untagged
        assert m.get_many(["a", "b", "c"]) == {"b": 2}


def test_async_manager_tags_on_postgres(postgres_dsn: str) -> None:
    table = _table()

    async def main() -> None:
        store = AsyncPostgresTier(postgres_dsn, table=table, timeout=5)
        async with AsyncCacheManager(local=LocalCache(10), store=store) as m:
            await m.set("a", 1, tags=["t"])
            await m.set_many({"b": 2, "c": 3}, tags=["t", "u"])
            await m.set("d", 4)
            assert _rows(postgres_dsn, table)[:3] == [("t", "a"), ("t", "b"), ("t", "c")]
            assert await m.invalidate_tags(["t"]) == 3
            assert await m.get_many(["a", "b", "c", "d"]) == {"d": 4}
            assert live(await store.get_many(["a", "b", "c"])) == {}
            assert _rows(postgres_dsn, table) == [("u", "b"), ("u", "c")]
            assert await m.invalidate_tags(["u"]) == 0

    asyncio.run(asyncio.wait_for(main(), 30))
