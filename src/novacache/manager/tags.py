"""Tag indexes: which keys carry a tag, so ``invalidate_tags`` can find them without KEYS.

The index maps a tag to cache keys. Keys are the same in every tier, so one index shared
by every process that shares the tiers is enough; the manager keeps one in each shared
tier that can hold one, writes to all of them and reads their union:

- :class:`RedisTagIndex` and :class:`AsyncRedisTagIndex`: the Redis tier's own index
  sets (``tag_add``/``tag_members``; one set per tag, members in any slot: cluster-safe,
  no KEYS, no SCAN). ``RedisTier`` and ``AsyncRedisTier`` use the same keys, so sync and
  async managers on one Redis namespace share one index.
- :class:`SQLiteTagIndex`: a table ``novacache_tag_index(tag, key, expires)`` beside the
  store's tables in the SQLite file (the store tier's own tables are not touched).
- :class:`~novacache.manager.pgtags.PostgresTagIndex`: a table ``<table>_tags`` beside
  a PostgreSQL store's table, over its own connection to the store's DSN.
- :class:`LocalTagIndex`: an in-process dict, for a manager with no tier below L1.

The Redis index sets expire with their longest-lived member: ``tag_add`` with a TTL
extends a set's expiry to at least that TTL and never shortens it; a member written
without TTL leaves its set without expiry. So sets of tags whose entries all expired go
away by themselves; ``invalidate_tags`` removes a set at once. Members whose keys expired
earlier than their set are harmless (deleting an absent key). The SQLite and PostgreSQL
indexes expire rows with their entries.
"""

from __future__ import annotations

import inspect
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigurationError, TierError, TierTimeout, TierUnavailable
from ..tiers._keys import sqlite_key, sqlite_unkey
from ._async.tags import AsyncRedisTagIndex
from ._sync.tags import RedisTagIndex

__all__ = [
    "AnyTagIndex",
    "AsyncRedisTagIndex",
    "AsyncTagIndex",
    "LocalTagIndex",
    "RedisTagIndex",
    "SQLiteTagIndex",
    "TagIndex",
    "check_tags",
]


def check_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """The tags as a tuple without duplicates; each a non-empty ``str``."""
    if isinstance(tags, str):
        raise TypeError("tags is an iterable of str, not one str")
    out = tuple(dict.fromkeys(tags))
    for tag in out:
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"a tag is a non-empty str, not {tag!r}")
    return out


class TagIndex(Protocol):
    """What the manager asks of a tag index (failures raise ``TierError``)."""

    slot: str

    def add(self, tags: tuple[str, ...], keys: list[str], ttl: float | None) -> None: ...
    def members(self, tags: tuple[str, ...]) -> set[str]: ...
    def drop(self, tags: tuple[str, ...]) -> None: ...
    def clear(self) -> None: ...


class AsyncTagIndex(Protocol):
    """A tag index the async manager awaits (:class:`AsyncRedisTagIndex`)."""

    slot: str

    async def add(self, tags: tuple[str, ...], keys: list[str], ttl: float | None) -> None: ...
    async def members(self, tags: tuple[str, ...]) -> set[str]: ...
    async def drop(self, tags: tuple[str, ...]) -> None: ...
    async def clear(self) -> None: ...


#: Either kind; the sync manager only ever gets :class:`TagIndex` objects.
AnyTagIndex = TagIndex | AsyncTagIndex


_TABLE = (
    "CREATE TABLE IF NOT EXISTS novacache_tag_index ("
    " tag TEXT NOT NULL, key TEXT NOT NULL, expires REAL,"
    " PRIMARY KEY (tag, key)) WITHOUT ROWID"
)
_ADD = (
    "INSERT INTO novacache_tag_index (tag, key, expires) VALUES (?, ?, ?)"
    " ON CONFLICT (tag, key) DO UPDATE SET expires = CASE"
    " WHEN excluded.expires IS NULL OR expires IS NULL THEN NULL"
    " ELSE max(expires, excluded.expires) END"
)
_PURGE_EVERY = 256


def sqlite_error(what: str, op: str, exc: sqlite3.Error) -> TierError:
    """The error of a side table in SQLite (``what``: which one, and its file) whose
    ``op`` failed: a timeout while the file is locked or busy, else unavailable. The
    message names the exception type only (never a value from the table)."""
    text = f"{what}: {op} failed: {type(exc).__name__}"
    if "locked" in str(exc) or "busy" in str(exc):
        return TierTimeout(text)
    return TierUnavailable(text)


class SQLiteTagIndex:
    """A tag table in the SQLite store's file, shared by the processes using that file.

    ``clock`` is wall time, as the SQLite tier's (rows expire with their entries). Tags
    and keys are stored as the SQLite tier stores keys (``TEXT``, or a ``BLOB`` of the
    bytes of one with a lone surrogate; see :mod:`novacache.tiers._keys`).
    """

    slot = "store"
    blocking = True  # the async manager calls it in a worker thread

    def __init__(
        self,
        path: str | Path,
        *,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
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
        except sqlite3.Error as exc:
            raise self._error("open", exc) from exc

    def _error(self, op: str, exc: sqlite3.Error) -> TierError:
        return sqlite_error(f"sqlite tag index {self.path}", op, exc)

    def add(self, tags: tuple[str, ...], keys: list[str], ttl: float | None) -> None:
        now = self._clock()
        expires = None if ttl is None else now + ttl
        stored = [sqlite_key(key) for key in keys]
        rows = [(sqlite_key(tag), key, expires) for tag in tags for key in stored]
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(_ADD, rows)
                self._writes += 1
                if self._writes % _PURGE_EVERY == 0:
                    self._conn.execute("DELETE FROM novacache_tag_index WHERE expires <= ?", (now,))
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise self._error("add", exc) from exc

    def members(self, tags: tuple[str, ...]) -> set[str]:
        now = self._clock()
        found: set[str] = set()
        with self._lock:
            try:
                for tag in tags:
                    rows = self._conn.execute(
                        "SELECT key FROM novacache_tag_index"
                        " WHERE tag = ? AND (expires IS NULL OR expires > ?)",
                        (sqlite_key(tag), now),
                    ).fetchall()
                    for (stored,) in rows:
                        key = stored if type(stored) is str else sqlite_unkey(stored)
                        if key is not None:  # None: a row no key wrote
                            found.add(key)
            except sqlite3.Error as exc:
                raise self._error("members", exc) from exc
        return found

    def drop(self, tags: tuple[str, ...]) -> None:
        with self._lock:
            try:
                self._conn.executemany(
                    "DELETE FROM novacache_tag_index WHERE tag = ?",
                    [(sqlite_key(t),) for t in tags],
                )
            except sqlite3.Error as exc:
                raise self._error("drop", exc) from exc

    def clear(self) -> None:
        with self._lock:
            try:
                self._conn.execute("DELETE FROM novacache_tag_index")
            except sqlite3.Error as exc:
                raise self._error("clear", exc) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class LocalTagIndex:
    """An in-process index, for a manager whose only tier is L1.

    Note that keys evicted from L1 stay listed until their tag is invalidated (deleting
    an absent key is harmless); the index is as large as the (tag, key) pairs written.
    """

    slot = "local"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tags: dict[str, set[str]] = {}

    def add(self, tags: tuple[str, ...], keys: list[str], ttl: float | None) -> None:
        with self._lock:
            for tag in tags:
                self._tags.setdefault(tag, set()).update(keys)

    def members(self, tags: tuple[str, ...]) -> set[str]:
        with self._lock:
            found: set[str] = set()
            for tag in tags:
                found |= self._tags.get(tag, set())
            return found

    def drop(self, tags: tuple[str, ...]) -> None:
        with self._lock:
            for tag in tags:
                self._tags.pop(tag, None)

    def clear(self) -> None:
        with self._lock:
            self._tags.clear()


def indexes_for(
    remote: object, store: object, clock: Callable[[], float] = time.time
) -> tuple[AnyTagIndex, ...]:
    """The tag indexes a manager over these tiers keeps (see the module docstring).

    Raises ``ConfigurationError`` when there are tiers below L1 but none of them can hold
    a shared index (a store of another kind without Redis): tags would be per-process
    only.
    """
    found: list[AnyTagIndex] = []
    if remote is not None and hasattr(remote, "tag_members"):
        if inspect.iscoroutinefunction(remote.tag_members):
            found.append(AsyncRedisTagIndex(remote))
        else:
            found.append(RedisTagIndex(remote))
    sqlite_store = getattr(store, "sync", store)  # AsyncSQLiteTier wraps an SQLiteTier
    path = getattr(sqlite_store, "path", None)
    if isinstance(path, Path) and hasattr(sqlite_store, "purge_expired"):
        found.append(SQLiteTagIndex(path, clock=clock))
    postgres = _postgres_index(store)
    if postgres is not None:
        found.append(postgres)
    if not found and remote is None and store is None:
        found.append(LocalTagIndex())
    if not found:
        raise ConfigurationError(
            "tags need a shared tag index: a RedisTier remote, or an SQLite or PostgreSQL store"
        )
    return tuple(found)


def _postgres_index(store: object) -> TagIndex | None:
    """A :class:`~.pgtags.PostgresTagIndex` beside a (sync or async) PostgreSQL store's
    table, over the store's DSN; ``None`` for any other store."""
    module = sys.modules.get("novacache.tiers.postgres")  # loaded if store is one
    if module is None or not isinstance(store, (module.PostgresTier, module.AsyncPostgresTier)):
        return None
    from .pgtags import PostgresTagIndex

    tier: Any = store
    dsn: str = tier._pool.conninfo  # the DSN the tier was made with
    return PostgresTagIndex(dsn, tier.table, timeout=tier._timeout)
