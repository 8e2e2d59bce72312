"""What the two PostgreSQL tiers share, with no I/O: the table's statements, argument
checks, error translation, the batched access times (see :mod:`novacache.tiers.postgres`)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping
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
from ._checks import check_count, check_frame, check_key, check_keys, check_seconds
from ._glob import glob_regex, literal_prefix, prefix_upper_bound
from ._keys import pg_key

__all__ = ["MAX_FRAME_BYTES", "SCHEMA_COMMENT", "PostgresTierBase"]

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
        # The conditional writes of the manager's write-backs (see set_if), and a
        # delete's tombstones with the count of live entries they replaced.
        self.set_if_absent = q(
            "INSERT INTO {t} (key, frame, size, expires_at, atime)"
            " VALUES (%s, %b, %s, now() + %s::float8 * interval '1 second', now())"
            + upsert
            + " WHERE {t}.expires_at IS NOT NULL AND {t}.expires_at <= now() RETURNING 1"
        )
        self.set_if_same = q(
            "UPDATE {t} SET frame = %b, size = %s,"
            " expires_at = now() + %s::float8 * interval '1 second', atime = now()"
            f" WHERE key = %s AND frame = %b AND {live} RETURNING 1"
        )
        # Tombstones written over the keys (the rows they replace locked in key order),
        # and which of the replaced rows held a live entry that was no tombstone: their
        # count (one group of keys), or the keys (several: the caller counts them per
        # group).
        bury = (
            "WITH old AS (SELECT key, frame, expires_at FROM {t}"
            " WHERE key = ANY(%s::text[]) ORDER BY key FOR UPDATE),"
            " ins AS (INSERT INTO {t} (key, frame, size, expires_at, atime)"
            " SELECT u.k, %b, %s, now() + %s::float8 * interval '1 second', now()"
            " FROM unnest(%s::text[]) AS u(k)" + upsert + ")"
        )
        was_live = (
            f"{live} AND NOT (octet_length(frame) = 14"
            " AND substring(frame FROM 1 FOR 2) = '\\x4e54'::bytea)"
        )
        self.tombstone = q(bury + f" SELECT count(*) FILTER (WHERE {was_live}) FROM old")
        self.tombstone_live = q(bury + f" SELECT key FROM old WHERE {was_live}")
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
        rx = "substr(key, %s) ~ %s"  # what follows the prefix (see _scan_plan)
        self.scan_first = q(
            f"SELECT key FROM {{t}} WHERE key >= %s AND key < %s AND {rx} AND {live}"
            " ORDER BY key LIMIT %s"
        )
        self.scan_next = q(
            f"SELECT key FROM {{t}} WHERE key > %s AND key < %s AND {rx} AND {live}"
            " ORDER BY key LIMIT %s"
        )
        self.scan_first_open = q(
            f"SELECT key FROM {{t}} WHERE key >= %s AND {rx} AND {live} ORDER BY key LIMIT %s"
        )
        self.scan_next_open = q(
            f"SELECT key FROM {{t}} WHERE key > %s AND {rx} AND {live} ORDER BY key LIMIT %s"
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
    # The expression checks only what follows the prefix (substr from its end): the
    # range checks the prefix, and an expression of a 20 kB literal takes the server
    # seconds to compile.
    prefix = pg_key(literal_prefix(pattern))
    upper = prefix_upper_bound(prefix)
    regex = glob_regex(pattern, escaped=True, after_prefix=True)
    start = len(prefix) + 1
    if upper is None:
        return st.scan_first_open, st.scan_next_open, [prefix, start, regex]
    return st.scan_first, st.scan_next, [prefix, upper, start, regex]


class PostgresTierBase:
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
