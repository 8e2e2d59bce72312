"""The PostgreSQL tier, written once: the asyncio form of this module is the hand-written
source, and the synchronous form is generated from it by ``scripts/unasync.py`` (see
:mod:`novacache.tiers.postgres` for what the tier promises).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import psycopg
import psycopg_pool
from psycopg import sql

from ..._concurrency import AsyncLock
from ...errors import StoreCorrupted, TierError, TierUnavailable
from .._checks import check_frame, check_key, check_ttl
from .._keys import pg_unkey
from .._pg_base import (
    _SCAN_PAGE,
    SCHEMA_COMMENT,
    PostgresTierBase,
    _check_pg_key,
    _check_pg_keys,
    _check_pool,
    _found,
    _scan_plan,
)

__all__ = ["AsyncPostgresTier"]


class AsyncPostgresTier(PostgresTierBase):
    """A tier of frames in a PostgreSQL table shared by many processes and machines.

    ``dsn`` is a libpq connection string or URI. ``table`` (lower-case, optionally
    ``schema.table``) is created on first use when absent; an existing table that is not
    a novacache store raises ``StoreCorrupted``. ``maxbytes`` bounds the frame bytes
    (checked every ``evict_every`` writes, so it can be exceeded briefly); ``timeout``
    bounds both the wait for a pooled connection and every statement (server-side
    ``statement_timeout``). The pool holds ``min_size`` to ``max_size`` connections.

    Nothing from psycopg escapes: ``TierUnavailable`` when the server cannot be reached or
    the connection was lost (the pool then checks its idle connections, so calls succeed
    again as soon as the server is back), ``TierTimeout``, ``StoreFull`` for a full disk,
    ``TierError`` otherwise. The constructor does no I/O: the pool opens on the first
    call (or :meth:`migrate`). The synchronous tier is thread-safe; the asyncio tier
    serves the tasks of one event loop.
    """

    def __init__(
        self,
        dsn: str,
        *,
        table: str = "novacache",
        unlogged: bool = True,
        maxbytes: int | None = None,
        timeout: float = 5.0,
        min_size: int = 1,
        max_size: int = 10,
        evict_every: int = 100,
        touch_batch: int = 512,
        touch_interval: float = 1.0,
        name: str = "postgres",
    ) -> None:
        super().__init__(
            table, unlogged, maxbytes, timeout, evict_every, touch_batch, touch_interval, name
        )
        _check_pool(dsn, min_size, max_size)
        statement_timeout = self._statement_timeout()

        async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(statement_timeout)

        self._pool: psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]] = (
            psycopg_pool.AsyncConnectionPool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=self._timeout,
                kwargs={"autocommit": True},
                configure=configure,
                open=False,
                name=f"novacache-{self.table}",
            )
        )
        self._opened = False
        self._migrate_lock = AsyncLock()

    # -- plumbing ------------------------------------------------------------------------

    async def _lost(self) -> None:
        """After a lost connection: test the idle ones so that dead ones are replaced."""
        try:
            await self._pool.check()
        except Exception:
            pass

    async def _open_pool(self) -> None:
        """Open the pool on first use (under the lock: a caller that finds it opened can
        use it at once)."""
        if self._opened:
            return
        async with self._migrate_lock:
            if not self._opened:
                await self._pool.open(wait=False)
                self._opened = True

    async def _run(self, op: str, query: sql.Composed, params: Any = None, *,
                   fetch: bool = True, binary: bool = False) -> list[Any]:  # fmt: skip
        if self._closed:
            raise self._closed_error(op)
        if not self._ready:
            await self.migrate()
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(query, params, binary=binary)
                return await cursor.fetchall() if fetch else []
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
            error = self._error(op, exc)
            if isinstance(error, TierUnavailable):
                await self._lost()
            elif isinstance(exc, psycopg.errors.UndefinedTable):
                self._ready = False  # dropped behind our back: the next call creates it
            raise error from exc

    async def migrate(self) -> None:
        """Create the table and its indexes when absent (idempotent, safe to race).

        Raises ``StoreCorrupted`` when a table of that name exists and is not a store.
        """
        if self._closed:
            raise self._closed_error("migrate")
        await self._open_pool()
        if self._ready:
            return
        async with self._migrate_lock:
            if not self._ready:
                await self._create_table()

    async def _create_table(self) -> None:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(
                    sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(self._st.lock_key)
                )
                cursor = await conn.execute(
                    sql.SQL(
                        "SELECT to_regclass({r}) IS NOT NULL,"
                        " obj_description(to_regclass({r}), 'pg_class')"
                    ).format(r=self._st.regclass)
                )
                row = await cursor.fetchone()
                assert row is not None
                exists, comment = row
                if exists and comment != SCHEMA_COMMENT:
                    raise StoreCorrupted(
                        f"{self.name}: table {self.table} exists and is not a novacache"
                        f" store (comment {comment!r})"
                    )
                if not exists:
                    for statement in self._st.create:
                        await conn.execute(statement)
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
            error = self._error("migrate", exc)
            if isinstance(error, TierUnavailable):
                await self._lost()
            raise error from exc
        self._ready = True

    async def _after_write(self) -> None:
        if self._eviction_due():
            try:
                await self.enforce_budget()
            except TierError:
                pass  # the write itself succeeded; the next due write evicts again

    async def _maybe_flush(self, keys: Iterable[str]) -> None:
        if self._maxbytes is not None and self._note_touches(keys):
            try:
                await self.flush_access_times()
            except TierError:
                pass

    async def get(self, key: str) -> bytes | None:
        """The frame stored under ``key``, or ``None`` when absent or expired."""
        stored = _check_pg_key(key)
        rows = await self._run("get", self._st.get, (stored,), binary=True)
        if not rows:
            return None
        await self._maybe_flush((stored,))
        return bytes(rows[0][0])

    async def set(self, key: str, frame: bytes, ttl: float | None = None) -> None:
        """Store ``frame`` under ``key`` for ``ttl`` seconds (``None``: no expiry)."""
        check_key(key)
        keys, frames = self._check_frames({key: frame})
        ttl = check_ttl(ttl)
        await self._run("set", self._st.set, (keys[0], frames[0], len(frames[0]), ttl), fetch=False)
        await self._after_write()

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The frames of the keys present, in one round-trip."""
        wanted, stored = _check_pg_keys(keys)
        if not wanted:
            return {}
        rows = await self._run("get_many", self._st.get_many, (stored,), binary=True)
        if rows:
            await self._maybe_flush(k for k, _ in rows)
        return _found(wanted, stored, rows)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store every frame of ``items`` with one TTL, in one statement."""
        ttl = check_ttl(ttl)
        keys, frames = self._check_frames(items)
        if not keys:
            return
        await self._run("set_many", self._st.set_many, (ttl, keys, frames), fetch=False)
        await self._after_write()

    async def set_if(
        self, key: str, frame: bytes, ttl: float | None = None, *, expect: bytes | None
    ) -> bool:
        """Store ``frame`` under ``key`` only if the key still holds ``expect`` (``None``:
        only if it is absent or expired), in one statement; whether it was stored. The
        manager's write-backs use it (see docs/consistency.md)."""
        check_key(key)
        keys, frames = self._check_frames({key: frame})
        ttl = check_ttl(ttl)
        if expect is None:
            rows = await self._run(
                "set_if", self._st.set_if_absent, (keys[0], frames[0], len(frames[0]), ttl)
            )
        else:
            check_frame(expect)
            rows = await self._run(
                "set_if",
                self._st.set_if_same,
                (frames[0], len(frames[0]), ttl, keys[0], bytes(expect)),
            )
        if rows:
            await self._after_write()
        return bool(rows)

    async def tombstone_many(self, keys: Iterable[str], frame: bytes, ttl: float) -> int:
        """Replace each key's frame with ``frame`` (a delete's tombstone) for ``ttl``
        seconds, in one statement; how many keys held a live entry that was not a
        tombstone."""
        _, stored = _check_pg_keys(keys)
        check_frame(frame)
        life = check_ttl(ttl)
        if not stored:
            return 0
        rows = await self._run(
            "delete", self._st.tombstone, (stored, bytes(frame), len(frame), life, stored)
        )
        return int(rows[0][0])

    async def tombstone_groups(
        self, groups: Sequence[Iterable[str]], frame: bytes, ttl: float
    ) -> list[int]:
        """:meth:`tombstone_many` of each group of keys, in one statement; how many keys
        of each group held a live entry that was not a tombstone (a key in two groups is
        counted in the first). The invalidation engine's ``run_many`` (coalesced
        invalidations) uses it."""
        stored = [_check_pg_keys(group)[1] for group in groups]
        check_frame(frame)
        life = check_ttl(ttl)
        union = list(dict.fromkeys(key for group in stored for key in group))
        if not union:
            return [0] * len(stored)
        rows = await self._run(
            "delete", self._st.tombstone_live, (union, bytes(frame), len(frame), life, union)
        )
        live = {row[0] for row in rows}
        counts: list[int] = []
        for group in stored:
            counts.append(sum(1 for key in group if key in live))
            live.difference_update(group)  # counted in the first group that names it
        return counts

    async def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there (an expired key was not)."""
        # Note that the class's method is called, not an attribute of the instance: a
        # timer set on the instance (novacache.ops.metrics) times this call once.
        return await type(self).delete_many(self, [check_key(key)]) == 1

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the keys in one statement; how many of them were there."""
        _, stored = _check_pg_keys(keys)
        if not stored:
            return 0
        return int((await self._run("delete", self._st.delete, (stored,)))[0][0])

    async def ttl(self, key: str) -> float | None:
        """Seconds ``key`` has left, ``math.inf`` without expiry, ``None`` when absent."""
        rows = await self._run("ttl", self._st.ttl, (_check_pg_key(key),))
        return float(rows[0][0]) if rows else None

    def scan(self, pattern: str = "*") -> AsyncIterator[str]:
        """Yield each live key matching the Redis glob ``pattern`` once (by key order).

        The server filters with a regular expression over the index range of the
        pattern's literal prefix, 1000 keys a page, holding no transaction in between.
        """
        first, following, extra = _scan_plan(self._st, pattern)
        return self._scan(first, following, extra)

    async def _scan(
        self, first: sql.Composed, following: sql.Composed, extra: list[Any]
    ) -> AsyncIterator[str]:
        rows = await self._run("scan", first, (*extra, _SCAN_PAGE))
        while True:
            for (stored,) in rows:
                key = pg_unkey(stored)
                if key is not None:
                    yield key
            if len(rows) < _SCAN_PAGE:
                return
            rows = await self._run("scan", following, (rows[-1][0], *extra[1:], _SCAN_PAGE))

    async def clear(self) -> None:
        """Remove every entry of the table."""
        with self._touch_lock:
            self._touched = {}
        await self._run("clear", self._st.clear, fetch=False)

    async def ping(self) -> float:
        """Seconds one ``SELECT 1`` round-trip took; ``TierUnavailable`` when unreachable."""
        if self._closed:
            raise self._closed_error("ping")
        await self._open_pool()
        started = time.perf_counter()
        try:
            async with self._pool.connection() as conn:
                await (await conn.execute("SELECT 1")).fetchall()
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
            await self._lost()
            raise TierUnavailable(str(self._error("ping", exc))) from exc
        return time.perf_counter() - started

    async def close(self) -> None:
        """Write pending access times and close the pool; harmless twice."""
        if self._closed:
            return
        if self._touched and self._ready:
            try:
                await self.flush_access_times()
            except TierError:
                pass
        self._closed = True
        if self._opened:
            await self._pool.close()

    async def flush_access_times(self) -> None:
        """Write the access times batched in memory now (one statement)."""
        taken = self._take_touches()
        if taken is not None:
            await self._run("touch", self._st.touch, (*taken, taken[0]), fetch=False)

    async def enforce_budget(self) -> int:
        """Delete expired rows, then least recently used ones until ``maxbytes`` fits;
        how many rows went. Does nothing (returns 0) while another client is at it."""
        if self._maxbytes is None:
            return 0
        await self.flush_access_times()
        if self._closed:
            raise self._closed_error("evict")
        try:
            async with self._pool.connection() as conn, conn.transaction():
                row = await (await conn.execute(self._st.try_lock)).fetchone()
                if not row or not row[0]:
                    return 0
                purged = (await conn.execute(self._st.purge)).rowcount
                evicted = (await conn.execute(self._st.evict, (self._maxbytes,))).rowcount
                return max(0, purged) + max(0, evicted)
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
            raise self._error("evict", exc) from exc

    async def usage(self) -> tuple[int, int]:
        """Rows and frame bytes in the table (a full count: for tests and tools)."""
        count, size = (await self._run("usage", self._st.usage))[0]
        return int(count), int(size)

    async def __aenter__(self) -> AsyncPostgresTier:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
