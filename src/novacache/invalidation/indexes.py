"""Where the engine records, at write time, which keys fall under which pattern instance
and which keys depend on which: one index per shared tier, written together, read as a
union (as the manager's tag indexes are; see :mod:`novacache.manager.tags`).

- :class:`~novacache.invalidation._sync.redisindex.RedisIndex` /
  :class:`~novacache.invalidation._async.redisindex.AsyncRedisIndex`: sorted sets in the
  Redis tier's namespace.
- :class:`SQLiteIndex`: a table ``novacache_inv_index(name, key, expires)`` in the SQLite
  store's file (primary key ``(name, key)``, an index on ``expires``).
- :class:`PostgresIndex`: a table ``<store table>_inv`` beside a PostgreSQL store's.
- :class:`LocalIndex`: in-process, for a manager whose only tier is L1.

Every index keeps an entry as long as its key lives (the TTL the tiers got), removes
expired entries as it is written, and shortens the entries an invalidation read to
``grace`` seconds: none grows past the live keys it describes plus that grace.
"""

from __future__ import annotations

import inspect
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, TierError, TierUnavailable
from ..manager.tags import sqlite_error
from ..tiers._keys import sqlite_key, sqlite_unkey

if TYPE_CHECKING:
    from ._async.redisindex import AsyncRedisIndex
    from ._sync.redisindex import RedisIndex

__all__ = [
    "AsyncRedisIndex",
    "LocalIndex",
    "PostgresIndex",
    "RedisIndex",
    "SQLiteIndex",
    "indexes_for",
]

_PURGE_EVERY = 256

_TABLE = (
    "CREATE TABLE IF NOT EXISTS novacache_inv_index ("
    " name TEXT NOT NULL, key TEXT NOT NULL, expires REAL,"
    " PRIMARY KEY (name, key)) WITHOUT ROWID"
)
_EXPIRES = "CREATE INDEX IF NOT EXISTS novacache_inv_index_expires ON novacache_inv_index (expires)"
_ADD = (
    "INSERT INTO novacache_inv_index (name, key, expires) VALUES (?, ?, ?)"
    " ON CONFLICT (name, key) DO UPDATE SET expires = CASE"
    " WHEN excluded.expires IS NULL OR expires IS NULL THEN NULL"
    " ELSE max(expires, excluded.expires) END"
)
_TAKE = (
    "UPDATE novacache_inv_index SET expires = min(coalesce(expires, ?1), ?1)"
    " WHERE name = ?2 AND (expires IS NULL OR expires > ?3) RETURNING key"
)


class SQLiteIndex:
    """The invalidation table in the SQLite store's file, shared by every process using
    the file. ``clock`` is wall time, as the SQLite tier's (entries expire with keys)."""

    slot = "store"
    blocking = True  # the async engine calls it in a worker thread

    def __init__(
        self, path: str | Path, *, timeout: float = 5.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._writes = 0
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(_TABLE)
            self._conn.execute(_EXPIRES)
        except sqlite3.Error as exc:
            raise self._error("open", exc) from exc

    def _error(self, op: str, exc: sqlite3.Error) -> TierError:
        return sqlite_error(f"sqlite invalidation index {self.path}", op, exc)

    def add(self, pairs: Iterable[tuple[str, str]], ttl: float | None) -> None:
        """Record each ``(name, key)`` pair for ``ttl`` seconds (``None``: no expiry)."""
        now = self._clock()
        expires = None if ttl is None else now + ttl
        rows = [(sqlite_key(name), sqlite_key(key), expires) for name, key in pairs]
        if not rows:
            return
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(_ADD, rows)
                self._writes += 1
                if self._writes % _PURGE_EVERY == 0:
                    self._conn.execute("DELETE FROM novacache_inv_index WHERE expires <= ?", (now,))
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise self._error("add", exc) from exc

    def take(self, names: Iterable[str], grace: float) -> dict[str, set[str]]:
        """The live keys recorded under each of ``names`` (one transaction; names with
        none are left out); the entries read are shortened to ``grace`` seconds."""
        now = self._clock()
        found: dict[str, set[str]] = {}
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for name in dict.fromkeys(names):
                    rows = self._conn.execute(_TAKE, (now + grace, sqlite_key(name), now))
                    for (stored,) in rows.fetchall():
                        key = stored if type(stored) is str else sqlite_unkey(stored)
                        if key is not None:
                            found.setdefault(name, set()).add(key)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise self._error("take", exc) from exc
        return found

    def size(self) -> int:
        """How many entries the table holds (expired ones not yet purged included)."""
        with self._lock:
            (n,) = self._conn.execute("SELECT count(*) FROM novacache_inv_index").fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class LocalIndex:
    """An in-process index for a manager whose only tier is L1 (``local``).

    Bounded by L1: when it holds twice as many entries as after its last sweep, it
    drops the entries whose key left L1 (evicted, expired, deleted) or whose time ran out.
    """

    slot = "local"
    blocking = False

    def __init__(self, local: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self._local = local
        self._clock = clock
        self._lock = threading.Lock()
        self._names: dict[str, dict[str, float]] = {}
        self._size = 0
        self._swept = 64

    def add(self, pairs: Iterable[tuple[str, str]], ttl: float | None) -> None:
        expires = float("inf") if ttl is None else self._clock() + ttl
        with self._lock:
            for name, key in pairs:
                entries = self._names.setdefault(name, {})
                if key not in entries:
                    self._size += 1
                    entries[key] = expires
                elif entries[key] < expires:
                    entries[key] = expires
            if self._size > 2 * self._swept:
                self._sweep()

    def _sweep(self) -> None:  # called with the lock held
        now = self._clock()
        local = self._local
        for name in list(self._names):
            entries = self._names[name]
            for key in [k for k, e in entries.items() if e <= now or k not in local]:
                del entries[key]
                self._size -= 1
            if not entries:
                del self._names[name]
        self._swept = max(self._size, 64)

    def take(self, names: Iterable[str], grace: float) -> dict[str, set[str]]:
        now = self._clock()
        cut = now + grace
        found: dict[str, set[str]] = {}
        with self._lock:
            for name in names:
                entries = self._names.get(name)
                if not entries:
                    continue
                for key, expires in entries.items():
                    if expires > now:
                        found.setdefault(name, set()).add(key)
                        if expires > cut:
                            entries[key] = cut
        return found

    def size(self) -> int:
        with self._lock:
            return self._size

    def close(self) -> None:
        """Nothing to close."""


def indexes_for(
    local: Any, remote: object, store: object, clock: Callable[[], float] = time.time
) -> tuple[Any, ...]:
    """The invalidation indexes of a manager over these tiers (see the module docstring).

    ``ConfigurationError`` when there are tiers below L1 but none can hold a shared
    index (a store of another kind without Redis): the index would be per-process.
    """
    found: list[Any] = []
    if remote is not None and hasattr(remote, "tag_members"):
        # Imported here: redis-py is an extra, and the embedded default runs without it.
        if inspect.iscoroutinefunction(remote.tag_members):
            from ._async.redisindex import AsyncRedisIndex

            found.append(AsyncRedisIndex(remote))
        else:
            from ._sync.redisindex import RedisIndex

            found.append(RedisIndex(remote))
    sqlite_store = getattr(store, "sync", store)  # AsyncSQLiteTier wraps an SQLiteTier
    path = getattr(sqlite_store, "path", None)
    if isinstance(path, Path) and hasattr(sqlite_store, "purge_expired"):
        found.append(SQLiteIndex(path, clock=clock))
    module = sys.modules.get("novacache.tiers.postgres")  # loaded if store is one
    if module is not None and isinstance(store, (module.PostgresTier, module.AsyncPostgresTier)):
        tier: Any = store
        found.append(PostgresIndex(tier._pool.conninfo, tier.table, timeout=tier._timeout))
    if not found and remote is None and store is None and local is not None:
        found.append(LocalIndex(local))
    if not found:
        raise ConfigurationError(
            "invalidation needs a shared index: a RedisTier remote, or an SQLite or"
            " PostgreSQL store"
        )
    return tuple(found)


class PostgresIndex:
    """The invalidation table ``<store table>_inv`` of a PostgreSQL store, over its own
    connection to the store's DSN (created on first use; rows expire on the server's
    clock, as the store's). Needs psycopg (imported when first used)."""

    slot = "store"
    blocking = True

    def __init__(self, dsn: str, table: str, *, timeout: float = 5.0) -> None:
        *schema, base = table.split(".")
        self.table = ".".join([*schema, f"{base[:59]}_inv"])
        self.dsn = dsn
        self._timeout = timeout
        self._lock = threading.Lock()
        self._conn: Any = None
        self._closed = False
        self._writes = 0

    def _error(self, op: str, exc: BaseException) -> TierError:
        from ..manager.pgtags import postgres_error  # psycopg: only with a PostgreSQL store

        return postgres_error(f"postgres invalidation index {self.table}", op, exc)

    def _connect(self) -> Any:
        import psycopg
        from psycopg import sql

        if self._conn is not None and not self._conn.closed:
            return self._conn
        t = sql.Identifier(*self.table.split("."))
        conn = psycopg.connect(
            self.dsn, autocommit=True, connect_timeout=max(1, round(self._timeout))
        )
        try:
            ms = max(1, int(self._timeout * 1000))
            conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(ms)))
            with conn.transaction():
                conn.execute(
                    sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(
                        sql.Literal(f"novacache-inv:{self.table}")
                    )
                )
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {t} ("
                        ' name text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL,'
                        " expires_at timestamptz, PRIMARY KEY (name, key))"
                    ).format(t=t)
                )
                conn.execute(
                    sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} (expires_at)").format(
                        t=t, i=sql.Identifier(f"{self.table.split('.')[-1][:59]}_ixp")
                    )
                )
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _run(self, op: str, query: str, params: Any) -> list[Any]:
        import psycopg
        from psycopg import sql

        with self._lock:
            if self._closed:
                raise TierUnavailable(f"postgres invalidation index {self.table}: {op} after close")
            try:
                conn = self._connect()
                t = sql.Identifier(*self.table.split("."))
                cursor = conn.execute(sql.SQL(query).format(t=t), params)
                return cursor.fetchall() if cursor.description is not None else []
            except psycopg.Error as exc:
                error = self._error(op, exc)
                if isinstance(error, TierUnavailable) and self._conn is not None:
                    self._conn.close()
                    self._conn = None
                raise error from exc

    def add(self, pairs: Iterable[tuple[str, str]], ttl: float | None) -> None:
        from ..tiers._keys import pg_key

        rows = list(pairs)
        if not rows:
            return
        self._run(
            "add",
            "INSERT INTO {t} AS old (name, key, expires_at)"
            " SELECT n, k, now() + make_interval(secs => %s::float8)"
            " FROM unnest(%s::text[], %s::text[]) AS r(n, k)"
            " ON CONFLICT (name, key) DO UPDATE SET expires_at = CASE"
            " WHEN excluded.expires_at IS NULL OR old.expires_at IS NULL THEN NULL"
            " ELSE greatest(old.expires_at, excluded.expires_at) END",
            (ttl, [pg_key(n) for n, _ in rows], [pg_key(k) for _, k in rows]),
        )
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            self._run("purge", "DELETE FROM {t} WHERE expires_at <= now()", None)

    def take(self, names: Iterable[str], grace: float) -> dict[str, set[str]]:
        from ..tiers._keys import pg_key, pg_unkey

        wanted = [pg_key(n) for n in dict.fromkeys(names)]
        if not wanted:
            return {}
        rows = self._run(
            "take",
            "UPDATE {t} SET expires_at = least(coalesce(expires_at, 'infinity'),"
            " now() + make_interval(secs => %s::float8))"
            " WHERE name = ANY(%s::text[]) AND (expires_at IS NULL OR expires_at > now())"
            " RETURNING name, key",
            (grace, wanted),
        )
        found: dict[str, set[str]] = {}
        for stored_name, stored_key in rows:
            name, key = pg_unkey(stored_name), pg_unkey(stored_key)
            if name is not None and key is not None:
                found.setdefault(name, set()).add(key)
        return found

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def __getattr__(name: str) -> Any:
    """``AsyncRedisIndex`` / ``RedisIndex``, imported on first use (they need redis-py)."""
    if name == "AsyncRedisIndex":
        from ._async.redisindex import AsyncRedisIndex

        return AsyncRedisIndex
    if name == "RedisIndex":
        from ._sync.redisindex import RedisIndex

        return RedisIndex
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
