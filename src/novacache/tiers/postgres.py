"""L3, shared: a store of frames in one PostgreSQL table (``PostgresTier``,
``AsyncPostgresTier``), through psycopg 3 and a psycopg_pool connection pool.

This module needs the ``postgres`` extra (``pip install novacache[postgres]``);
``novacache.tiers`` imports it only when one of its names is first used.

The table (created on first use, or by :meth:`PostgresTier.migrate`)::

    key text COLLATE "C" PRIMARY KEY, frame bytea, size integer,
    expires_at timestamptz (NULL: no expiry), atime timestamptz

A key is stored as itself, except that NUL, lone surrogates and U+FFFF (which ``text``
cannot hold, or which is the escape) are written as U+FFFF and a code character, so
every ``str`` key works and no two collide (see :mod:`novacache.tiers._keys`). A frame
larger than :data:`MAX_FRAME_BYTES` (or than ``maxbytes``) is refused with
``EntryTooLarge`` before anything is sent.

Note that expiry and access times use the *server's* clock (``now()``): the table is
shared by many machines whose clocks need not agree. Tables are ``UNLOGGED`` by default:
a cache does not need to survive a server crash, and unlogged writes skip the WAL (an
unlogged table is emptied by crash recovery, kept by a clean restart).

Every bulk operation is one statement, so one round-trip: ``get_many`` with
``= ANY(%s)``, ``set_many`` with ``INSERT ... SELECT FROM unnest(...)``, ``delete_many``
with ``DELETE ... RETURNING`` in a CTE. The byte budget (``maxbytes``, frame bytes) is
enforced every ``evict_every`` writes by one ``DELETE`` that keeps the most recently
used rows whose running total fits, after the expired rows; one client at a time does it
(a transaction-scoped advisory lock). Access times are batched in memory like the SQLite
tier's and written with one ``UPDATE ... FROM unnest(...)``.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

import psycopg
import psycopg_pool
from psycopg import sql

from ..errors import (
    ConfigurationError,
    EntryTooLarge,
    StoreCorrupted,
    StoreFull,
    TierError,
    TierTimeout,
    TierUnavailable,
)
from ._checks import check_count, check_frame, check_key, check_keys, check_seconds, check_ttl
from ._glob import glob_regex, literal_prefix, prefix_upper_bound
from ._keys import pg_key, pg_unkey

__all__ = ["MAX_FRAME_BYTES", "AsyncPostgresTier", "PostgresTier"]

SCHEMA_COMMENT = "novacache store, schema 1"
_SCAN_PAGE = 1000
_TABLE_NAME = re.compile(r"(?:[a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}\Z")


#: The largest frame stored: PostgreSQL refuses a message of 1 GiB or more (its
#: ``MaxAllocSize``); 1 MiB is left for the rest of the statement.
MAX_FRAME_BYTES = (1 << 30) - (1 << 20)


def _check_pg_key(key: object) -> str:
    """The key's PostgreSQL ``text`` (NUL, surrogates and U+FFFF escaped, see
    :mod:`._keys`); ``TypeError`` for a key that is not a ``str``."""
    return pg_key(check_key(key))


def _check_pg_keys(keys: Iterable[str]) -> tuple[list[str], list[str]]:
    """The keys without duplicates, and their PostgreSQL forms in the same order."""
    wanted = check_keys(keys)
    return wanted, [pg_key(key) for key in wanted]


def _found(wanted: list[str], stored: list[str], rows: list[Any]) -> dict[str, bytes]:
    """``{key: frame}`` of the ``(stored key, frame)`` rows of a read of ``wanted``."""
    if wanted == stored:
        return {k: bytes(f) for k, f in rows}
    back = dict(zip(stored, wanted, strict=True))
    return {back[k]: bytes(f) for k, f in rows}


class _Statements:
    """The SQL of one table, composed once with the table's identifier."""

    def __init__(self, table: str, unlogged: bool) -> None:
        if not isinstance(table, str) or not _TABLE_NAME.match(table):
            raise ConfigurationError(
                f"table must be a lower-case SQL name (optionally schema.name), not {table!r}"
            )
        self.table = table
        parts = table.split(".")
        base = parts[-1]
        t = sql.Identifier(*parts)

        def q(text: str, **extra: sql.Composable) -> sql.Composed:
            return sql.SQL(text).format(t=t, **extra)

        self.lock_key = sql.Literal(f"novacache:{table}")
        self.create = [
            q(
                "CREATE {unlogged} TABLE IF NOT EXISTS {t} ("
                ' key text COLLATE "C" PRIMARY KEY,'
                " frame bytea NOT NULL,"
                " size integer NOT NULL,"
                " expires_at timestamptz,"
                " atime timestamptz NOT NULL DEFAULT now())",
                unlogged=sql.SQL("UNLOGGED" if unlogged else ""),
            ),
            q("CREATE INDEX IF NOT EXISTS {i} ON {t} (atime)", i=sql.Identifier(f"{base}_atime")),
            q(
                "CREATE INDEX IF NOT EXISTS {i} ON {t} (expires_at) WHERE expires_at IS NOT NULL",
                i=sql.Identifier(f"{base}_expires"),
            ),
            q("COMMENT ON TABLE {t} IS {c}", c=sql.Literal(SCHEMA_COMMENT)),
        ]
        self.regclass = sql.Literal(table)
        live = "(expires_at IS NULL OR expires_at > now())"
        self.get = q(f"SELECT frame FROM {{t}} WHERE key = %s AND {live}")
        self.get_many = q(f"SELECT key, frame FROM {{t}} WHERE key = ANY(%s::text[]) AND {live}")
        # Note that frames are sent with %b (binary): a bytea[] sent as text is escaped
        # and parsed, which made set_many of 100 KiB seven times slower.
        upsert = (
            " ON CONFLICT (key) DO UPDATE SET frame = EXCLUDED.frame, size = EXCLUDED.size,"
            " expires_at = EXCLUDED.expires_at, atime = EXCLUDED.atime"
        )
        self.set = q(
            "INSERT INTO {t} (key, frame, size, expires_at, atime)"
            " VALUES (%s, %b, %s, now() + %s::float8 * interval '1 second', now())" + upsert
        )
        self.set_many = q(
            "INSERT INTO {t} (key, frame, size, expires_at, atime)"
            " SELECT u.k, u.f, octet_length(u.f), now() + %s::float8 * interval '1 second', now()"
            " FROM unnest(%s::text[], %b::bytea[]) AS u(k, f)" + upsert
        )
        self.delete = q(
            "WITH d AS (DELETE FROM {t} WHERE key IN (SELECT key FROM {t}"
            " WHERE key = ANY(%s::text[]) ORDER BY key FOR UPDATE) RETURNING expires_at)"
            f" SELECT count(*) FILTER (WHERE {live}) FROM d"
        )
        self.ttl = q(
            "SELECT CASE WHEN expires_at IS NULL THEN 'Infinity'::float8"
            " ELSE extract(epoch FROM expires_at - now())::float8 END"
            f" FROM {{t}} WHERE key = %s AND {live}"
        )
        self.scan_first = q(
            f"SELECT key FROM {{t}} WHERE key >= %s AND key < %s AND key ~ %s AND {live}"
            " ORDER BY key LIMIT %s"
        )
        self.scan_next = q(
            f"SELECT key FROM {{t}} WHERE key > %s AND key < %s AND key ~ %s AND {live}"
            " ORDER BY key LIMIT %s"
        )
        self.scan_first_open = q(
            f"SELECT key FROM {{t}} WHERE key >= %s AND key ~ %s AND {live} ORDER BY key LIMIT %s"
        )
        self.scan_next_open = q(
            f"SELECT key FROM {{t}} WHERE key > %s AND key ~ %s AND {live} ORDER BY key LIMIT %s"
        )
        self.clear = q("DELETE FROM {t}")
        # Note that rows another client has locked are skipped, not waited for: it is
        # writing them, so their access time is fresh anyway, and no wait means no
        # deadlock between clients flushing overlapping batches.
        self.touch = q(
            "UPDATE {t} SET atime = greatest({t}.atime, now() - u.age * interval '1 second')"
            " FROM unnest(%s::text[], %s::float8[]) AS u(k, age)"
            " WHERE {t}.key = u.k AND {t}.key IN (SELECT key FROM {t}"
            " WHERE key = ANY(%s::text[]) ORDER BY key FOR UPDATE SKIP LOCKED)"
        )
        self.try_lock = q("SELECT pg_try_advisory_xact_lock(hashtext({l}))", l=self.lock_key)
        # Eviction skips rows other clients are writing (they are the freshest anyway),
        # so it never waits for them and never deadlocks with them.
        self.purge = q(
            "DELETE FROM {t} WHERE key IN (SELECT key FROM {t} WHERE expires_at <= now()"
            " ORDER BY key FOR UPDATE SKIP LOCKED)"
        )
        # Keep the most recently used rows whose running total of bytes fits the budget.
        self.evict = q(
            "DELETE FROM {t} WHERE key IN (SELECT key FROM {t} WHERE key IN ("
            "  SELECT key FROM (SELECT key, sum(size) OVER (ORDER BY atime DESC, key DESC)"
            "  AS newer FROM {t}) AS r WHERE r.newer > %s)"
            " ORDER BY key FOR UPDATE SKIP LOCKED)"
        )
        self.usage = q("SELECT count(*), coalesce(sum(size), 0)::bigint FROM {t}")


def _check_pool(dsn: object, min_size: object, max_size: object) -> None:
    if not isinstance(dsn, str):
        raise TypeError(f"dsn must be a str, not {type(dsn).__name__}")
    if check_count("max_size", max_size) < check_count("min_size", min_size, 0):
        raise ConfigurationError("max_size must be >= min_size")


def _scan_plan(st: _Statements, pattern: str) -> tuple[sql.Composed, sql.Composed, list[Any]]:
    """The first-page and next-page statements of a scan and their extra parameters."""
    if not isinstance(pattern, str):
        raise TypeError("pattern must be a str")
    # Over the stored (escaped) form of the keys: the escape keeps prefixes, so the
    # escaped literal prefix bounds the index range.
    prefix = pg_key(literal_prefix(pattern))
    upper = prefix_upper_bound(prefix)
    regex = glob_regex(pattern, escaped=True)
    if upper is None:
        return st.scan_first_open, st.scan_next_open, [prefix, regex]
    return st.scan_first, st.scan_next, [prefix, upper, regex]


class _Base:
    """What the sync and async tiers share: options, statements, errors, access times."""

    def __init__(
        self,
        table: str,
        unlogged: bool,
        maxbytes: int | None,
        timeout: float,
        evict_every: int,
        touch_batch: int,
        touch_interval: float,
        name: str,
    ) -> None:
        if maxbytes is not None and (
            isinstance(maxbytes, bool) or not isinstance(maxbytes, int) or maxbytes <= 0
        ):
            raise ConfigurationError(f"maxbytes must be a positive int or None, not {maxbytes!r}")
        timeout = check_seconds("timeout", timeout, zero=False)
        check_count("evict_every", evict_every)
        check_count("touch_batch", touch_batch)
        touch_interval = check_seconds("touch_interval", touch_interval)
        if not isinstance(name, str):
            raise TypeError(f"name must be str, not {type(name).__name__}")
        self.name = name
        self._st = _Statements(table, unlogged)
        self._maxbytes = maxbytes
        self._timeout = float(timeout)
        self._evict_every = evict_every
        self._touch_batch = touch_batch
        self._touch_interval = float(touch_interval)
        self._touched: dict[str, float] = {}
        self._last_flush = time.monotonic()
        self._touch_lock = threading.Lock()
        self._writes = 0
        self._ready = False
        self._closed = False

    @property
    def table(self) -> str:
        return self._st.table

    def _statement_timeout(self) -> sql.Composed:
        ms = max(1, int(self._timeout * 1000))
        return sql.SQL("SET statement_timeout = {}").format(sql.Literal(ms))

    def _error(self, op: str, exc: BaseException) -> TierError:
        where = f"{self.name} table {self.table}: {op} failed"
        if isinstance(exc, psycopg_pool.PoolTimeout):
            return TierTimeout(f"{where}: no connection within {self._timeout}s")
        if isinstance(exc, psycopg_pool.PoolClosed):
            return TierUnavailable(f"{where}: the tier is closed")
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return TierTimeout(f"{where}: {text}")
        if isinstance(exc, psycopg.errors.DiskFull):
            return StoreFull(f"{where}: {text}")
        if isinstance(exc, psycopg.errors.DataCorrupted):
            return StoreCorrupted(f"{where}: {text}")
        if isinstance(
            exc,
            (
                psycopg.errors.TransactionRollback,
                psycopg.errors.DeadlockDetected,
                psycopg.errors.SerializationFailure,
            ),
        ):
            return TierError(f"{where} (may be retried): {text}")  # deadlock, serialization
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            return TierUnavailable(f"{where}: {text}")
        return TierError(f"{where}: {text}")

    def _closed_error(self, op: str) -> TierUnavailable:
        return TierUnavailable(f"{self.name} table {self.table}: {op} on a closed tier")

    def _check_frames(self, items: Mapping[str, bytes]) -> tuple[list[str], list[bytes]]:
        keys: list[str] = []
        frames: list[bytes] = []
        # Sorted: bulk writes lock rows in key order, as deletes do, so they cannot deadlock.
        limit = MAX_FRAME_BYTES if self._maxbytes is None else min(self._maxbytes, MAX_FRAME_BYTES)
        for key, frame in sorted((_check_pg_key(k), f) for k, f in items.items()):
            keys.append(key)
            frames.append(check_frame(frame))
            if len(frame) > limit:
                raise EntryTooLarge(len(frame), limit)
        return keys, frames

    def _note_touches(self, keys: Iterable[str]) -> bool:
        """Record reads; whether the batch is due to be written."""
        now = time.monotonic()
        for key in keys:
            self._touched[key] = now
        return (
            len(self._touched) >= self._touch_batch
            or now - self._last_flush >= self._touch_interval
        )

    def _take_touches(self) -> tuple[list[str], list[float]] | None:
        with self._touch_lock:
            pending, self._touched = self._touched, {}
            self._last_flush = now = time.monotonic()
        if not pending:
            return None
        items = sorted(pending.items())
        return [k for k, _ in items], [max(0.0, now - t) for _, t in items]

    def _eviction_due(self) -> bool:
        if self._maxbytes is None:
            return False
        self._writes += 1
        return self._writes % self._evict_every == 0


class PostgresTier(_Base):
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
    ``TierError`` otherwise.
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

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.execute(statement_timeout)

        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = (
            psycopg_pool.ConnectionPool(
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
        self._pool.open(wait=False)
        self._migrate_lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------------

    def _lost(self) -> None:
        """After a lost connection: test the idle ones so that dead ones are replaced."""
        try:
            self._pool.check()
        except Exception:
            pass

    def _run(self, op: str, query: sql.Composed, params: Any = None, *, fetch: bool = True,
             binary: bool = False) -> list[Any]:  # fmt: skip
        if self._closed:
            raise self._closed_error(op)
        if not self._ready:
            self.migrate()
        try:
            with self._pool.connection() as conn:
                cursor = conn.execute(query, params, binary=binary)
                return cursor.fetchall() if fetch else []
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
            error = self._error(op, exc)
            if isinstance(error, TierUnavailable):
                self._lost()
            elif isinstance(exc, psycopg.errors.UndefinedTable):
                self._ready = False  # dropped behind our back: the next call creates it
            raise error from exc

    def migrate(self) -> None:
        """Create the table and its indexes when absent (idempotent, safe to race).

        Raises ``StoreCorrupted`` when a table of that name exists and is not a store.
        """
        if self._closed:
            raise self._closed_error("migrate")
        with self._migrate_lock:
            if self._ready:
                return
            try:
                with self._pool.connection() as conn, conn.transaction():
                    conn.execute(
                        sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(
                            self._st.lock_key
                        )
                    )
                    row = conn.execute(
                        sql.SQL(
                            "SELECT to_regclass({r}) IS NOT NULL,"
                            " obj_description(to_regclass({r}), 'pg_class')"
                        ).format(r=self._st.regclass)
                    ).fetchone()
                    assert row is not None
                    exists, comment = row
                    if exists and comment != SCHEMA_COMMENT:
                        raise StoreCorrupted(
                            f"{self.name}: table {self.table} exists and is not a novacache"
                            f" store (comment {comment!r})"
                        )
                    if not exists:
                        for statement in self._st.create:
                            conn.execute(statement)
            except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
                error = self._error("migrate", exc)
                if isinstance(error, TierUnavailable):
                    self._lost()
                raise error from exc
            self._ready = True

    def _after_write(self) -> None:
        if self._eviction_due():
            try:
                self.enforce_budget()
            except TierError:
                pass  # the write itself succeeded; the next due write evicts again

    def _maybe_flush(self, keys: Iterable[str]) -> None:
        if self._maxbytes is not None and self._note_touches(keys):
            try:
                self.flush_access_times()
            except TierError:
                pass  # access times are advisory: the read itself succeeded

    # -- the Tier contract ---------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The frame stored under ``key``, or ``None`` when absent or expired."""
        stored = _check_pg_key(key)
        rows = self._run("get", self._st.get, (stored,), binary=True)
        if not rows:
            return None
        self._maybe_flush((stored,))
        return bytes(rows[0][0])

    def set(self, key: str, frame: bytes, ttl: float | None = None) -> None:
        """Store ``frame`` under ``key`` for ``ttl`` seconds (``None``: no expiry)."""
        check_key(key)
        keys, frames = self._check_frames({key: frame})
        ttl = check_ttl(ttl)
        self._run("set", self._st.set, (keys[0], frames[0], len(frames[0]), ttl), fetch=False)
        self._after_write()

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The frames of the keys present, in one round-trip."""
        wanted, stored = _check_pg_keys(keys)
        if not wanted:
            return {}
        rows = self._run("get_many", self._st.get_many, (stored,), binary=True)
        if rows:
            self._maybe_flush(k for k, _ in rows)
        return _found(wanted, stored, rows)

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store every frame of ``items`` with one TTL, in one statement."""
        ttl = check_ttl(ttl)
        keys, frames = self._check_frames(items)
        if not keys:
            return
        self._run("set_many", self._st.set_many, (ttl, keys, frames), fetch=False)
        self._after_write()

    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there (an expired key was not)."""
        return self.delete_many([check_key(key)]) == 1

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the keys in one statement; how many of them were there."""
        _, stored = _check_pg_keys(keys)
        if not stored:
            return 0
        return int(self._run("delete", self._st.delete, (stored,))[0][0])

    def ttl(self, key: str) -> float | None:
        """Seconds ``key`` has left, ``math.inf`` without expiry, ``None`` when absent."""
        rows = self._run("ttl", self._st.ttl, (_check_pg_key(key),))
        return float(rows[0][0]) if rows else None

    def scan(self, pattern: str = "*") -> Iterator[str]:
        """Yield each live key matching the Redis glob ``pattern`` once (by key order).

        The server filters with a regular expression over the index range of the
        pattern's literal prefix, 1000 keys a page, holding no transaction in between.
        """
        first, following, extra = _scan_plan(self._st, pattern)
        return self._scan(first, following, extra)

    def _scan(
        self, first: sql.Composed, following: sql.Composed, extra: list[Any]
    ) -> Iterator[str]:
        rows = self._run("scan", first, (*extra, _SCAN_PAGE))
        while True:
            for (stored,) in rows:
                key = pg_unkey(stored)
                if key is not None:
                    yield key
            if len(rows) < _SCAN_PAGE:
                return
            rows = self._run("scan", following, (rows[-1][0], *extra[1:], _SCAN_PAGE))

    def clear(self) -> None:
        """Remove every entry of the table."""
        with self._touch_lock:
            self._touched = {}
        self._run("clear", self._st.clear, fetch=False)

    def ping(self) -> float:
        """Seconds one ``SELECT 1`` round-trip took; ``TierUnavailable`` when unreachable."""
        if self._closed:
            raise self._closed_error("ping")
        started = time.perf_counter()
        try:
            with self._pool.connection() as conn:
                conn.execute("SELECT 1").fetchall()
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
            self._lost()
            raise TierUnavailable(str(self._error("ping", exc))) from exc
        return time.perf_counter() - started

    def close(self) -> None:
        """Write pending access times and close the pool; harmless twice."""
        if self._closed:
            return
        if self._touched and self._ready:
            try:
                self.flush_access_times()
            except TierError:
                pass
        self._closed = True
        self._pool.close()

    # -- beyond the contract -------------------------------------------------------------

    def flush_access_times(self) -> None:
        """Write the access times batched in memory now (one statement)."""
        taken = self._take_touches()
        if taken is not None:
            self._run("touch", self._st.touch, (*taken, taken[0]), fetch=False)

    def enforce_budget(self) -> int:
        """Delete expired rows, then least recently used ones until ``maxbytes`` fits;
        how many rows went. Does nothing (returns 0) while another client is at it."""
        if self._maxbytes is None:
            return 0
        self.flush_access_times()
        if self._closed:
            raise self._closed_error("evict")
        try:
            with self._pool.connection() as conn, conn.transaction():
                row = conn.execute(self._st.try_lock).fetchone()
                if not row or not row[0]:
                    return 0
                purged = conn.execute(self._st.purge).rowcount
                evicted = conn.execute(self._st.evict, (self._maxbytes,)).rowcount
                return max(0, purged) + max(0, evicted)
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
            raise self._error("evict", exc) from exc

    def usage(self) -> tuple[int, int]:
        """Rows and frame bytes in the table (a full count: for tests and tools)."""
        count, size = self._run("usage", self._st.usage)[0]
        return int(count), int(size)

    def __enter__(self) -> PostgresTier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresTier(table={self.table!r}, maxbytes={self._maxbytes!r})"


class AsyncPostgresTier(_Base):
    """The asyncio twin of :class:`PostgresTier` (``psycopg.AsyncConnection`` and
    ``psycopg_pool.AsyncConnectionPool``): the same table, the same statements.

    The constructor does no I/O; the pool opens on the first call (or :meth:`migrate`).
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
        self._migrating: asyncio.Lock | None = None  # made in the running loop

    async def _lost(self) -> None:
        try:
            await self._pool.check()
        except Exception:
            pass

    async def _open_pool(self) -> None:
        if not self._opened:
            self._opened = True
            await self._pool.open(wait=False)

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
        """See :meth:`PostgresTier.migrate`."""
        if self._closed:
            raise self._closed_error("migrate")
        await self._open_pool()
        if self._ready:
            return
        if self._migrating is None:
            self._migrating = asyncio.Lock()
        async with self._migrating:
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
        """See :meth:`PostgresTier.get`."""
        stored = _check_pg_key(key)
        rows = await self._run("get", self._st.get, (stored,), binary=True)
        if not rows:
            return None
        await self._maybe_flush((stored,))
        return bytes(rows[0][0])

    async def set(self, key: str, frame: bytes, ttl: float | None = None) -> None:
        """See :meth:`PostgresTier.set`."""
        check_key(key)
        keys, frames = self._check_frames({key: frame})
        ttl = check_ttl(ttl)
        await self._run("set", self._st.set, (keys[0], frames[0], len(frames[0]), ttl), fetch=False)
        await self._after_write()

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """See :meth:`PostgresTier.get_many`."""
        wanted, stored = _check_pg_keys(keys)
        if not wanted:
            return {}
        rows = await self._run("get_many", self._st.get_many, (stored,), binary=True)
        if rows:
            await self._maybe_flush(k for k, _ in rows)
        return _found(wanted, stored, rows)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """See :meth:`PostgresTier.set_many`."""
        ttl = check_ttl(ttl)
        keys, frames = self._check_frames(items)
        if not keys:
            return
        await self._run("set_many", self._st.set_many, (ttl, keys, frames), fetch=False)
        await self._after_write()

    async def delete(self, key: str) -> bool:
        """See :meth:`PostgresTier.delete`."""
        return await self.delete_many([check_key(key)]) == 1

    async def delete_many(self, keys: Iterable[str]) -> int:
        """See :meth:`PostgresTier.delete_many`."""
        _, stored = _check_pg_keys(keys)
        if not stored:
            return 0
        return int((await self._run("delete", self._st.delete, (stored,)))[0][0])

    async def ttl(self, key: str) -> float | None:
        """See :meth:`PostgresTier.ttl`."""
        rows = await self._run("ttl", self._st.ttl, (_check_pg_key(key),))
        return float(rows[0][0]) if rows else None

    def scan(self, pattern: str = "*") -> AsyncIterator[str]:
        """See :meth:`PostgresTier.scan`."""
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
        """See :meth:`PostgresTier.clear`."""
        with self._touch_lock:
            self._touched = {}
        await self._run("clear", self._st.clear, fetch=False)

    async def ping(self) -> float:
        """See :meth:`PostgresTier.ping`."""
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
        """See :meth:`PostgresTier.close`."""
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
        """See :meth:`PostgresTier.flush_access_times`."""
        taken = self._take_touches()
        if taken is not None:
            await self._run("touch", self._st.touch, (*taken, taken[0]), fetch=False)

    async def enforce_budget(self) -> int:
        """See :meth:`PostgresTier.enforce_budget`."""
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
        """See :meth:`PostgresTier.usage`."""
        count, size = (await self._run("usage", self._st.usage))[0]
        return int(count), int(size)

    async def __aenter__(self) -> AsyncPostgresTier:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
