"""The tag index of a manager whose shared tier is a PostgreSQL store.

:class:`PostgresTagIndex` keeps a table ``<store table>_tags (tag, key, expires_at)``
beside the store's table (same schema; the store tier's own table is not touched), over
its own connection to the store's DSN. Every process sharing the store shares the index.
Each operation is one statement (``add`` writes every (tag, key) pair of a call in one
``INSERT ... SELECT FROM unnest(...)``; ``members`` and ``drop`` take every tag at once).

Tags and keys are stored escaped as the store's keys are (NUL, surrogates and U+FFFF;
see :mod:`novacache.tiers._keys`). Rows expire with their entries on the *server's* clock
(``now()``), like the store's rows;
rows of keys evicted from the store stay until they expire or their tag is invalidated
(deleting an absent key is harmless). The table is logged even when the store's is
``UNLOGGED``: after a crash an emptied store with tag rows left is harmless, whereas
entries that survived with their tag rows lost would escape ``invalidate_tags``.

This module needs psycopg (the ``postgres`` extra); the manager imports it only for a
PostgreSQL store. The async manager calls this index in a worker thread, as it does the
SQLite index: an ``AsyncPostgresTier`` store gets the same (synchronous) index.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from psycopg import sql

from ..errors import TierError, TierTimeout, TierUnavailable
from ..tiers._keys import pg_key, pg_unkey

__all__ = ["PostgresTagIndex", "tag_table"]

_PURGE_EVERY = 256
_MAX_NAME = 63  # PostgreSQL's identifier length limit (NAMEDATALEN - 1)


def tag_table(table: str) -> str:
    """The name of the tag table beside the store table ``table`` (``schema.name`` kept)."""
    *schema, base = table.split(".")
    name = f"{base[: _MAX_NAME - 5]}_tags"
    return ".".join([*schema, name])


def postgres_error(what: str, op: str, exc: BaseException) -> TierError:
    """The error of a side table in PostgreSQL (``what``: which one) whose ``op``
    failed, with the first line of the server's message: a timeout for a cancelled
    statement, unavailable for a lost connection, else a plain tier error."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = f"{what}: {op} failed: {text}"
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return TierTimeout(where)
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return TierUnavailable(where)
    return TierError(where)


class PostgresTagIndex:
    """A tag table in the PostgreSQL database of a store, shared by every process using it.

    ``dsn`` is the store's connection string and ``table`` its table; ``timeout`` bounds
    the connection and every statement. The table is created on first use. A lost
    connection is reopened by the next call; failures raise ``TierUnavailable`` or
    ``TierTimeout`` (nothing from psycopg escapes).
    """

    slot = "store"
    blocking = True  # the async manager calls it in a worker thread

    def __init__(self, dsn: str, table: str, *, timeout: float = 5.0) -> None:
        self.dsn = dsn
        self.table = tag_table(table)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        self._writes = 0
        t = sql.Identifier(*self.table.split("."))
        base = self.table.split(".")[-1]

        def q(text: str, **extra: sql.Composable) -> sql.Composed:
            return sql.SQL(text).format(t=t, **extra)

        self._create = [
            q(
                "CREATE TABLE IF NOT EXISTS {t} ("
                ' tag text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL,'
                " expires_at timestamptz, PRIMARY KEY (tag, key))"
            ),
            q(
                "CREATE INDEX IF NOT EXISTS {i} ON {t} (expires_at) WHERE expires_at IS NOT NULL",
                i=sql.Identifier(f"{base[: _MAX_NAME - 4]}_exp"),
            ),
        ]
        self._lock_key = sql.Literal(f"novacache-tags:{self.table}")
        self._add = q(
            "INSERT INTO {t} AS old (tag, key, expires_at)"
            " SELECT g.tag, k.key, now() + make_interval(secs => %s::float8)"
            " FROM unnest(%s::text[]) AS g(tag) CROSS JOIN unnest(%s::text[]) AS k(key)"
            " ON CONFLICT (tag, key) DO UPDATE SET expires_at = CASE"
            " WHEN excluded.expires_at IS NULL OR old.expires_at IS NULL THEN NULL"
            " ELSE greatest(old.expires_at, excluded.expires_at) END"
        )
        self._members = q(
            "SELECT DISTINCT key FROM {t} WHERE tag = ANY(%s::text[])"
            " AND (expires_at IS NULL OR expires_at > now())"
        )
        self._drop = q("DELETE FROM {t} WHERE tag = ANY(%s::text[])")
        self._purge = q("DELETE FROM {t} WHERE expires_at <= now()")
        self._clear = q("DELETE FROM {t}")

    # -- plumbing ----------------------------------------------------------------------

    def _error(self, op: str, exc: BaseException) -> TierError:
        return postgres_error(f"postgres tag index {self.table}", op, exc)

    def _connect(self) -> psycopg.Connection[Any]:
        """The open connection (made, and the table created, when there is none)."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = psycopg.connect(
            self.dsn, autocommit=True, connect_timeout=max(1, round(self._timeout))
        )
        try:
            ms = max(1, int(self._timeout * 1000))
            conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(ms)))
            with conn.transaction():  # CREATE ... IF NOT EXISTS races in the catalog
                conn.execute(sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(
                    self._lock_key
                ))  # fmt: skip
                for statement in self._create:
                    conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _run(self, op: str, query: sql.Composed, params: Any) -> list[Any]:
        with self._lock:
            if self._closed:
                raise TierUnavailable(f"postgres tag index {self.table}: {op} after close")
            try:
                cursor = self._connect().execute(query, params)
                return cursor.fetchall() if cursor.description is not None else []
            except psycopg.Error as exc:
                error = self._error(op, exc)
                if isinstance(error, TierUnavailable) and self._conn is not None:
                    self._conn.close()  # reopened by the next call
                    self._conn = None
                raise error from exc

    # -- the TagIndex protocol ---------------------------------------------------------

    def add(self, tags: tuple[str, ...], keys: list[str], ttl: float | None) -> None:
        """Record ``keys`` under every tag of ``tags`` (one statement), expiring in ``ttl``."""
        if not tags or not keys:
            return
        self._run("add", self._add, (ttl, [pg_key(t) for t in tags], [pg_key(k) for k in keys]))
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            self._run("purge", self._purge, None)

    def members(self, tags: tuple[str, ...]) -> set[str]:
        """The live keys recorded under any of ``tags``."""
        if not tags:
            return set()
        rows = self._run("members", self._members, ([pg_key(t) for t in tags],))
        found = {pg_unkey(row[0]) for row in rows}
        found.discard(None)  # a row no key wrote
        return found  # type: ignore[return-value]

    def drop(self, tags: tuple[str, ...]) -> None:
        """Forget ``tags`` and their keys."""
        if tags:
            self._run("drop", self._drop, ([pg_key(t) for t in tags],))

    def clear(self) -> None:
        """Forget every tag of this store."""
        self._run("clear", self._clear, None)

    def close(self) -> None:
        """Close the connection; later calls raise ``TierUnavailable``."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
