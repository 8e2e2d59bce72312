"""L3, embedded: a store of frames in one SQLite file (``SQLiteTier``, ``AsyncSQLiteTier``).

The file is in WAL mode, so readers never wait for the writer and several processes on
one machine can share it. Each row holds a frame, its size, its absolute expiry (from the
tier's clock, wall time by default so that processes agree) and its last access time.

Layout (schema version 1, marked in the header with ``PRAGMA application_id``)::

    novacache_entries(id INTEGER PRIMARY KEY, key TEXT UNIQUE, frame BLOB, size, expires)
    novacache_access(id = entries.id, atime)     one narrow row per entry
    novacache_stats(id = 0, entries, bytes)      kept exact by triggers

A key is stored as ``TEXT``, or, when it holds a lone surrogate (no strict UTF-8), as a
``BLOB`` of its UTF-8 with the surrogate passed through: every ``str`` key works, and no
two collide (see :mod:`novacache.tiers._keys`). A frame larger than SQLite's length
limit (``SQLITE_LIMIT_LENGTH``, 10**9 bytes by default) or than ``maxbytes`` is refused
with ``EntryTooLarge`` before anything is written.

Note that the byte budget (``maxbytes``, counted in frame bytes) is enforced in the same
transaction as the write that exceeds it: expired rows go first, then the least recently
used. Access times are batched in memory and written in one transaction every
``touch_batch`` hits or ``touch_interval`` seconds (and before any eviction), so a read
never pays for a write; a tier opened without ``maxbytes`` records no access times (its
writes still set them). They live in their own narrow table: a batch of touches rewrites
a few small pages instead of every page that holds one of the frames.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import re
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from ..errors import (
    ConfigurationError,
    EntryTooLarge,
    StoreCorrupted,
    StoreFull,
    TierError,
    TierTimeout,
    TierUnavailable,
)
from ._checks import (
    check_count,
    check_frame,
    check_key,
    check_keys,
    check_path,
    check_seconds,
    check_ttl,
)
from ._glob import bytes_upper_bound, compile_glob, literal_prefix, prefix_upper_bound
from ._keys import encode_key, has_surrogate, sqlite_key, sqlite_unkey

__all__ = ["AsyncSQLiteTier", "SQLiteTier", "StoreUsage"]

_T = TypeVar("_T")

APPLICATION_ID = 0x4E4F5641  # "NOVA" in the SQLite header: marks a novacache store
SCHEMA_VERSION = 1
_CHUNK = 500  # keys per IN (...) list, well under SQLITE_MAX_VARIABLE_NUMBER
_SCAN_PAGE = 1000
_PURGE_EVERY = 1024  # writes between two purges of expired rows

_SCHEMA = (
    # Note that the id must be an INTEGER PRIMARY KEY, not the implicit rowid: VACUUM may
    # renumber implicit rowids, which would detach the access times from their entries.
    """CREATE TABLE novacache_entries (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        frame BLOB NOT NULL,
        size INTEGER NOT NULL,
        expires REAL
    )""",
    """CREATE TABLE novacache_access (
        id INTEGER PRIMARY KEY,
        atime REAL NOT NULL
    )""",
    "CREATE INDEX novacache_access_atime ON novacache_access (atime)",
    """CREATE INDEX novacache_entries_expires ON novacache_entries (expires)
        WHERE expires IS NOT NULL""",
    """CREATE TABLE novacache_stats (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        entries INTEGER NOT NULL,
        bytes INTEGER NOT NULL
    )""",
    "INSERT INTO novacache_stats (id, entries, bytes) VALUES (0, 0, 0)",
    """CREATE TRIGGER novacache_entries_insert AFTER INSERT ON novacache_entries BEGIN
        UPDATE novacache_stats SET entries = entries + 1, bytes = bytes + new.size
        WHERE id = 0;
    END""",
    """CREATE TRIGGER novacache_entries_delete AFTER DELETE ON novacache_entries BEGIN
        UPDATE novacache_stats SET entries = entries - 1, bytes = bytes - old.size
        WHERE id = 0;
        DELETE FROM novacache_access WHERE id = old.id;
    END""",
    """CREATE TRIGGER novacache_entries_resize AFTER UPDATE OF size ON novacache_entries
    BEGIN
        UPDATE novacache_stats SET bytes = bytes - old.size + new.size WHERE id = 0;
    END""",
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

_GET = "SELECT frame, expires FROM novacache_entries WHERE key = ?"
_TTL = "SELECT expires FROM novacache_entries WHERE key = ?"
_UPSERT = """INSERT INTO novacache_entries (key, frame, size, expires) VALUES (?, ?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET frame = excluded.frame, size = excluded.size,
        expires = excluded.expires"""
_ACCESSED = """INSERT INTO novacache_access (id, atime)
    SELECT id, ? FROM novacache_entries WHERE key = ?
    ON CONFLICT (id) DO UPDATE SET atime = excluded.atime"""
_DELETE_LIVE = """DELETE FROM novacache_entries
    WHERE key = ? AND (expires IS NULL OR expires > ?)"""
_TOUCH = """UPDATE novacache_access SET atime = ?
    WHERE id = (SELECT id FROM novacache_entries WHERE key = ?) AND atime < ?"""
_PURGE = "DELETE FROM novacache_entries WHERE expires <= ?"
_USAGE = "SELECT entries, bytes FROM novacache_stats WHERE id = 0"
_LRU = """SELECT e.id, e.key, e.size FROM novacache_access AS a
    JOIN novacache_entries AS e ON e.id = a.id ORDER BY a.atime, a.id"""
_EVICT = "DELETE FROM novacache_entries WHERE id = ?"
_SCAN_FIRST = (
    "SELECT key, expires FROM novacache_entries WHERE key >= ?{upper} ORDER BY key LIMIT ?"
)
_SCAN_NEXT = "SELECT key, expires FROM novacache_entries WHERE key > ?{upper} ORDER BY key LIMIT ?"

# Primary result codes (sqlite3.h); the low byte of an extended code.
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_NOTADB = 26
# SQLite's default SQLITE_MAX_LENGTH: the largest string or BLOB (the frames) it stores.
_DEFAULT_MAX_LENGTH = 1_000_000_000

_PRAGMA_NAME = re.compile(r"[a-z_]{1,64}\Z")
_PRAGMA_VALUE = re.compile(r"-?[0-9]{1,19}\Z|[A-Za-z_]{1,32}\Z")


class StoreUsage(NamedTuple):
    """What a store holds: rows (expired ones not yet purged included) and frame bytes."""

    entries: int
    bytes: int


class _NotAStore(Exception):
    """Raised inside ``_initialise`` for a readable SQLite file that is not our store."""


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


class SQLiteTier:
    """A persistent tier of frames in one SQLite file, shared by threads and processes.

    ``maxbytes`` bounds the frame bytes stored (least recently used rows are evicted,
    expired ones first); ``None`` means unbounded. ``timeout`` is how long a write waits
    for another writer (``TierTimeout`` after it). ``clock`` gives the time used for
    expiry and access times (seconds; wall time by default so that processes sharing the
    file agree; tests inject a fake one).

    A file that is not a novacache store, or is damaged, raises ``StoreCorrupted`` naming
    the path; with ``rebuild=True`` it is renamed to ``<path>.corrupt-<unix time in µs>``
    (nothing is deleted) and an empty store is created in its place. ``verify=True`` runs
    ``PRAGMA quick_check`` at open (reads the whole file) to find damaged pages early.
    ``pragmas`` are extra ``PRAGMA name = value`` settings for every connection (integers
    or bare words only; for example ``{"mmap_size": 2**26}``).

    Every method is safe to call from any number of threads: each call borrows one of a
    pool of connections (one per concurrently running call). Nothing from ``sqlite3``
    escapes; failures are ``TierError`` subclasses (``StoreFull`` for a full disk or
    quota, after which everything stored before is still there).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        maxbytes: int | None = None,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        rebuild: bool = False,
        verify: bool = False,
        touch_batch: int = 512,
        touch_interval: float = 1.0,
        pragmas: Mapping[str, int | str] | None = None,
        name: str = "sqlite",
    ) -> None:
        if maxbytes is not None and (
            isinstance(maxbytes, bool) or not isinstance(maxbytes, int) or maxbytes <= 0
        ):
            raise ConfigurationError(f"maxbytes must be a positive int or None, not {maxbytes!r}")
        timeout = check_seconds("timeout", timeout)
        check_count("touch_batch", touch_batch)
        touch_interval = check_seconds("touch_interval", touch_interval)
        if not callable(clock):
            raise TypeError("clock must be a callable returning seconds")
        if not isinstance(name, str):
            raise TypeError(f"name must be str, not {type(name).__name__}")
        if pragmas is not None and not isinstance(pragmas, Mapping):
            raise TypeError(f"pragmas must be a mapping, not {type(pragmas).__name__}")
        self._pragmas: list[str] = []
        for key, value in (pragmas or {}).items():
            if not isinstance(key, str) or not isinstance(value, (int, str)):
                raise TypeError("pragmas map names (str) to integers or bare words")
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                raise ConfigurationError(f"PRAGMA {key!r}: {value} is out of SQLite's range")
            text = str(value)
            if not _PRAGMA_NAME.match(key) or not _PRAGMA_VALUE.match(text):
                raise ConfigurationError(f"refusing PRAGMA {key!r} = {text!r}")
            self._pragmas.append(f"PRAGMA {key} = {text}")
        self.name = name
        self.path = Path(check_path(path))
        self._maxbytes = maxbytes
        self._timeout = float(timeout)
        self._clock = clock
        self._touch_batch = touch_batch
        self._touch_interval = float(touch_interval)
        self._touched: dict[str | bytes, float] = {}  # stored key -> access time
        self._touch_lock = threading.Lock()
        self._max_frame = _DEFAULT_MAX_LENGTH
        self._last_flush = clock()
        self._writes = 0
        self._idle: deque[sqlite3.Connection] = deque()
        self._orphans: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._closed = False
        self._open(rebuild=rebuild, verify=verify)
        _LIVE_TIERS.add(self)

    # -- opening ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self._timeout,
            isolation_level=None,  # autocommit; transactions are explicit BEGIN IMMEDIATE
            check_same_thread=False,  # the pool hands connections between threads
            cached_statements=64,
        )
        try:
            conn.execute("PRAGMA synchronous = NORMAL")  # durable against process crashes
            for pragma in self._pragmas:
                conn.execute(pragma)
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self, *, rebuild: bool, verify: bool) -> None:
        try:
            conn = self._connect_and_check(verify=verify)
        except StoreCorrupted:
            if not rebuild:
                raise
            self._move_aside()
            conn = self._connect_and_check(verify=False)
        getlimit = getattr(conn, "getlimit", None)  # Python >= 3.11
        if getlimit is not None:
            self._max_frame = int(getlimit(getattr(sqlite3, "SQLITE_LIMIT_LENGTH", 0)))
        self._idle.append(conn)

    def _connect_and_check(self, *, verify: bool) -> sqlite3.Connection:
        """A first connection to a file known to be our store (created when empty)."""
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect()
            self._initialise(conn, verify=verify)
            return conn
        except _NotAStore as exc:
            if conn is not None:
                conn.close()
            raise StoreCorrupted(f"{self.name} {self.path}: {exc}") from None
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise self._error("open", exc) from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise

    def _initialise(self, conn: sqlite3.Connection, *, verify: bool) -> None:
        # Note that nothing is written before the file is known to be ours or empty: a
        # foreign database must not even be switched to WAL mode.
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id not in (0, APPLICATION_ID):
            raise _NotAStore(f"not a novacache store (application_id {app_id:#x})")
        if verify:
            result = conn.execute("PRAGMA quick_check").fetchall()
            if result != [("ok",)]:
                raise _NotAStore(f"damaged: {'; '.join(str(r[0]) for r in result[:3])}")
        if app_id == 0:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise _NotAStore("an SQLite database, but not a novacache store")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have created it.
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            if app_id == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise _NotAStore(f"schema version {version}, this novacache reads {SCHEMA_VERSION}")
            conn.execute(_USAGE).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _move_aside(self) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.time_ns() // 1000}")
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        os.replace(self.path, aside)

    # -- connections and errors ------------------------------------------------------

    def _error(self, op: str, exc: sqlite3.Error) -> TierError:
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(exc)
        message = f"{self.name} {self.path}: {op} failed: {text}"
        if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or (
            primary is None and ("malformed" in text or "not a database" in text)
        ):
            return StoreCorrupted(message)
        if primary == _SQLITE_FULL or (primary is None and "is full" in text):
            return StoreFull(message)
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or (primary is None and "locked" in text):
            return TierTimeout(message)
        if primary in (_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CANTOPEN):
            return TierUnavailable(message)
        return TierError(message)

    def _borrow(self, op: str) -> sqlite3.Connection:
        if self._closed:
            raise TierUnavailable(f"{self.name} {self.path}: {op} on a closed tier")
        try:
            return self._idle.pop()
        except IndexError:
            pass
        try:
            return self._connect()
        except sqlite3.Error as exc:
            raise self._error(op, exc) from exc

    def _forget_connections(self) -> None:
        """In a forked child: the parent's connections must be neither used nor closed
        here (closing one could checkpoint and delete the WAL under the parent)."""
        self._orphans.extend(self._idle)
        self._idle = deque()

    def _give_back(self, conn: sqlite3.Connection) -> None:
        if self._closed or conn.in_transaction:
            conn.close()
        else:
            self._idle.append(conn)

    def _read(self, op: str, sql: str, params: Iterable[Any]) -> list[Any]:
        conn = self._borrow(op)
        try:
            return conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise self._error(op, exc) from exc
        finally:
            self._give_back(conn)

    def _write(self, op: str, work: Callable[[sqlite3.Connection], _T], *, wait: bool = True) -> _T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction: all of it or nothing.

        ``wait=False``: do not wait for another writer (fail with ``TierTimeout``)."""
        conn = self._borrow(op)
        try:
            if not wait:
                conn.execute("PRAGMA busy_timeout = 0")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                finally:
                    conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            else:
                conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise
            return result
        except sqlite3.Error as exc:
            raise self._error(op, exc) from exc
        finally:
            self._give_back(conn)

    # -- access times and the byte budget --------------------------------------------

    def _touch(self, key: str | bytes, now: float) -> None:
        self._touched[key] = now
        if (
            len(self._touched) >= self._touch_batch
            or now - self._last_flush >= self._touch_interval
        ):
            try:
                self._flush_touches_now(wait=False)
            except TierError:
                pass  # kept for the next flush: a read never waits for another writer

    def _take_touches(self) -> dict[str | bytes, float]:
        with self._touch_lock:
            pending, self._touched = self._touched, {}
            self._last_flush = self._clock()
        return pending

    def _flush_touches(self, conn: sqlite3.Connection) -> None:
        """Write the pending access times inside the caller's transaction."""
        pending = self._take_touches()
        if pending:
            conn.executemany(_TOUCH, [(t, k, t) for k, t in pending.items()])

    def _flush_touches_now(self, *, wait: bool) -> None:
        """Write the pending access times in a transaction of their own. With
        ``wait=False`` it fails at once (``TierTimeout``) when another connection holds
        the write lock; the access times are then kept for the next flush."""
        pending = self._take_touches()
        if not pending:
            return
        rows = [(t, k, t) for k, t in pending.items()]
        try:
            self._write("touch", lambda conn: conn.executemany(_TOUCH, rows), wait=wait)
        except TierError:
            with self._touch_lock:
                pending.update(self._touched)  # newer touches win
                self._touched = pending
            raise

    def _after_write(
        self, conn: sqlite3.Connection, now: float, written: Iterable[str | bytes]
    ) -> None:
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            conn.execute(_PURGE, (now,))
        if self._maxbytes is None:
            return
        total = conn.execute(_USAGE).fetchone()[1]
        if total <= self._maxbytes:
            return
        self._flush_touches(conn)
        conn.execute(_PURGE, (now,))
        excess = conn.execute(_USAGE).fetchone()[1] - self._maxbytes
        if excess <= 0:
            return
        # Note that the rows just written are evicted last: with a coarse clock they may
        # share their access time with older rows.
        keep = set(written)
        victims: list[tuple[int]] = []
        spared: list[tuple[int, int]] = []
        cursor = conn.execute(_LRU)
        while excess > 0:
            rows = cursor.fetchmany(256)
            if not rows:
                break
            for entry_id, key, size in rows:
                if key in keep:
                    spared.append((entry_id, size))
                    continue
                victims.append((entry_id,))
                excess -= size
                if excess <= 0:
                    break
        cursor.close()
        for entry_id, size in spared:
            if excess <= 0:
                break
            victims.append((entry_id,))
            excess -= size
        conn.executemany(_EVICT, victims)

    # -- the Tier contract -----------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The frame stored under ``key``, or ``None`` when absent or expired."""
        stored = sqlite_key(check_key(key))
        conn = self._borrow("get")
        try:
            row = conn.execute(_GET, (stored,)).fetchone()
        except sqlite3.Error as exc:
            raise self._error("get", exc) from exc
        finally:
            self._give_back(conn)
        if row is None:
            return None
        frame, expires = row
        now = self._clock()
        if expires is not None and expires <= now:
            return None
        if self._maxbytes is not None:
            self._touch(stored, now)
        return frame  # type: ignore[no-any-return]

    def set(self, key: str, frame: bytes, ttl: float | None = None) -> None:
        """Store ``frame`` under ``key`` for ``ttl`` seconds (``None``: no expiry).

        Raises ``EntryTooLarge`` (a ``ValueError``) for a frame larger than ``maxbytes``
        or than SQLite's length limit, leaving any older frame under the key in place.
        """
        # Note that the class's method is called, not an attribute of the instance: a
        # timer set on the instance (novacache.ops.metrics) times this call once, as a set.
        type(self).set_many(self, {check_key(key): frame}, ttl)

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The frames of the keys present (absent and expired keys are left out)."""
        wanted = check_keys(keys)
        found: dict[str, bytes] = {}
        if not wanted:
            return found
        rows: list[Any] = []
        for i in range(0, len(wanted), _CHUNK):
            chunk = [sqlite_key(k) for k in wanted[i : i + _CHUNK]]
            sql = (
                "SELECT key, frame, expires FROM novacache_entries "
                f"WHERE key IN ({_placeholders(len(chunk))})"
            )
            rows.extend(self._read("get_many", sql, chunk))
        now = self._clock()
        for stored, frame, expires in rows:
            if expires is None or expires > now:
                key = stored if type(stored) is str else sqlite_unkey(stored)
                if key is None:
                    continue
                found[key] = frame
                if self._maxbytes is not None:
                    self._touch(stored, now)
        return found

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store every frame of ``items`` with one TTL, in one transaction."""
        ttl = check_ttl(ttl)
        checked: list[tuple[str | bytes, bytes]] = []
        limit = self._max_frame if self._maxbytes is None else min(self._maxbytes, self._max_frame)
        for key, frame in items.items():
            check_key(key)
            check_frame(frame)
            if len(frame) > limit:
                raise EntryTooLarge(len(frame), limit)
            checked.append((sqlite_key(key), frame))
        if not checked:
            return
        now = self._clock()
        expires = None if ttl is None else now + ttl
        rows = [(k, f, len(f), expires) for k, f in checked]
        accessed = [(now, k) for k, _ in checked]

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(_UPSERT, rows)
            conn.executemany(_ACCESSED, accessed)
            self._after_write(conn, now, (k for k, _ in checked))

        self._write("set", work)

    def set_if(
        self, key: str, frame: bytes, ttl: float | None = None, *, expect: bytes | None
    ) -> bool:
        """Store ``frame`` under ``key`` only if the key still holds ``expect`` (``None``:
        only if it is absent or expired), in one transaction; whether it was stored.
        The manager's write-backs use it (see docs/consistency.md)."""
        ttl = check_ttl(ttl)
        check_key(key)
        check_frame(frame)
        if expect is not None:
            check_frame(expect)
        limit = self._max_frame if self._maxbytes is None else min(self._maxbytes, self._max_frame)
        if len(frame) > limit:
            raise EntryTooLarge(len(frame), limit)
        stored = sqlite_key(key)
        now = self._clock()
        expires = None if ttl is None else now + ttl

        def work(conn: sqlite3.Connection) -> bool:
            row = conn.execute(_GET, (stored,)).fetchone()
            current = None if row is None or (row[1] is not None and row[1] <= now) else row[0]
            if current != expect:
                return False
            conn.execute(_UPSERT, (stored, frame, len(frame), expires))
            conn.execute(_ACCESSED, (now, stored))
            self._after_write(conn, now, (stored,))
            return True

        return self._write("set", work)

    def set_if_many(
        self, items: Mapping[str, tuple[bytes, float | None, bytes | None]]
    ) -> builtins.set[str]:
        """:meth:`set_if` of each ``key: (frame, ttl, expect)``, in one transaction; the
        keys stored. The manager's promotions of a ``get_many`` use it."""
        limit = self._max_frame if self._maxbytes is None else min(self._maxbytes, self._max_frame)
        checked: list[tuple[str, str | bytes, bytes, float | None, bytes | None]] = []
        for key, (frame, ttl, expect) in items.items():
            ttl = check_ttl(ttl)
            check_key(key)
            check_frame(frame)
            if expect is not None:
                check_frame(expect)
            if len(frame) > limit:
                raise EntryTooLarge(len(frame), limit)
            checked.append((key, sqlite_key(key), frame, ttl, expect))
        if not checked:
            return builtins.set()
        now = self._clock()

        def work(conn: sqlite3.Connection) -> builtins.set[str]:
            stored: builtins.set[str] = builtins.set()
            written: list[str | bytes] = []
            for key, k, frame, ttl, expect in checked:
                row = conn.execute(_GET, (k,)).fetchone()
                current = None if row is None or (row[1] is not None and row[1] <= now) else row[0]
                if current != expect:
                    continue
                expires = None if ttl is None else now + ttl
                conn.execute(_UPSERT, (k, frame, len(frame), expires))
                conn.execute(_ACCESSED, (now, k))
                stored.add(key)
                written.append(k)
            if written:
                self._after_write(conn, now, written)
            return stored

        return self._write("set", work)

    def tombstone_many(self, keys: Iterable[str], frame: bytes, ttl: float) -> int:
        """Replace each key's frame with ``frame`` (a delete's tombstone) for ``ttl``
        seconds, in one transaction; how many keys held a live entry that was not a
        tombstone."""
        return self._tombstone([check_keys(keys)], frame, ttl)[0]

    def tombstone_groups(
        self, groups: Sequence[Iterable[str]], frame: bytes, ttl: float
    ) -> list[int]:
        """:meth:`tombstone_many` of each group of keys, in one transaction; how many keys
        of each group held a live entry that was not a tombstone (a key in two groups is
        counted in the first). The invalidation engine's ``run_many`` (coalesced
        invalidations) uses it."""
        return self._tombstone([check_keys(group) for group in groups], frame, ttl)

    def _tombstone(self, groups: list[list[str]], frame: bytes, ttl: float) -> list[int]:
        check_frame(frame)
        life = check_ttl(ttl)
        seen: dict[str | bytes, None] = {}  # every key once, in order
        firsts: list[list[str | bytes]] = []  # each group's keys not in an earlier group
        for group in groups:
            fresh = [k for k in dict.fromkeys(sqlite_key(key) for key in group) if k not in seen]
            seen.update(dict.fromkeys(fresh))
            firsts.append(fresh)
        if not seen:
            return [0] * len(firsts)
        stored = list(seen)
        now = self._clock()
        expires = None if life is None else now + life

        def work(conn: sqlite3.Connection) -> list[int]:
            counts = []
            for group in firsts:
                found = 0
                for i in range(0, len(group), _CHUNK):
                    chunk = group[i : i + _CHUNK]
                    sql = (
                        "SELECT frame FROM novacache_entries "
                        f"WHERE key IN ({_placeholders(len(chunk))}) "
                        "AND (expires IS NULL OR expires > ?)"
                    )
                    for (old,) in conn.execute(sql, (*chunk, now)):
                        if not (len(old) == 14 and old[:2] == b"NT"):
                            found += 1
                counts.append(found)
            conn.executemany(_UPSERT, [(k, frame, len(frame), expires) for k in stored])
            conn.executemany(_ACCESSED, [(now, k) for k in stored])
            self._after_write(conn, now, stored)
            return counts

        return self._write("delete", work)

    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there (an expired key was not)."""
        return type(self).delete_many(self, [check_key(key)]) == 1  # see set

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the keys; how many of them were there."""
        wanted = check_keys(keys)
        if not wanted:
            return 0
        stored = [sqlite_key(k) for k in wanted]
        now = self._clock()

        def work(conn: sqlite3.Connection) -> int:
            if len(stored) == 1:
                return conn.execute(_DELETE_LIVE, (stored[0], now)).rowcount
            count = 0
            for i in range(0, len(wanted), _CHUNK):
                chunk = stored[i : i + _CHUNK]
                sql = (
                    f"DELETE FROM novacache_entries WHERE key IN ({_placeholders(len(chunk))}) "
                    "AND (expires IS NULL OR expires > ?)"
                )
                count += conn.execute(sql, (*chunk, now)).rowcount
            return count

        return self._write("delete", work)

    def ttl(self, key: str) -> float | None:
        """Seconds ``key`` has left, ``math.inf`` without expiry, ``None`` when absent."""
        rows = self._read("ttl", _TTL, (sqlite_key(check_key(key)),))
        if not rows:
            return None
        expires = rows[0][0]
        if expires is None:
            return float("inf")
        left = float(expires) - self._clock()
        return left if left > 0 else None

    def scan(self, pattern: str = "*") -> Iterator[str]:
        """Yield each live key matching the Redis glob ``pattern`` once (by key order).

        Reads the key index in pages of 1000 between which no transaction is held, so a
        long scan never blocks writers; keys written during the scan may be missed.
        """
        if not isinstance(pattern, str):
            raise TypeError("pattern must be a str")
        return self._scan(pattern)

    def _scan(self, pattern: str) -> Iterator[str]:
        for page in self._scan_pages(pattern):
            yield from page

    def _scan_pages(self, pattern: str) -> Iterator[list[str]]:
        """The matching live keys, one list per page of the key index read.

        Two index ranges: the ``TEXT`` keys starting with the pattern's literal prefix,
        then the ``BLOB`` keys (those with a lone surrogate) starting with its bytes.
        Every ``BLOB`` sorts after every ``TEXT``, so an open-ended text range covers
        them too; a prefix with a lone surrogate has only ``BLOB`` keys to look at."""
        regex = compile_glob(pattern)
        prefix = literal_prefix(pattern)
        if not has_surrogate(prefix):
            upper = prefix_upper_bound(prefix)
            yield from self._scan_range(regex, prefix, upper)
            if upper is None:
                return
        low = encode_key(prefix)
        yield from self._scan_range(regex, low, bytes_upper_bound(low))

    def _scan_range(
        self, regex: re.Pattern[str], start: str | bytes, upper: str | bytes | None
    ) -> Iterator[list[str]]:
        bound = " AND key < ?" if upper is not None else ""
        extra = (upper,) if upper is not None else ()
        sql = _SCAN_FIRST.format(upper=bound)
        while True:
            rows = self._read("scan", sql, (start, *extra, _SCAN_PAGE))
            now = self._clock()
            page = []
            for stored, expires in rows:
                if expires is not None and expires <= now:
                    continue
                key = stored if type(stored) is str else sqlite_unkey(stored)
                if key is not None and regex.match(key):
                    page.append(key)
            yield page
            if len(rows) < _SCAN_PAGE:
                return
            sql, start = _SCAN_NEXT.format(upper=bound), rows[-1][0]

    def clear(self) -> None:
        """Remove every entry."""
        with self._touch_lock:
            self._touched = {}
        self._write("clear", lambda conn: conn.execute("DELETE FROM novacache_entries"))

    def ping(self) -> float:
        """Seconds one read of the store took; ``TierUnavailable`` when it cannot be read."""
        started = time.perf_counter()
        self._read("ping", _USAGE, ())
        return time.perf_counter() - started

    def close(self) -> None:
        """Write pending access times and close every connection; harmless twice."""
        if self._closed:
            return
        if self._touched and self._pid == os.getpid():
            try:
                self._flush_touches_now(wait=True)
            except TierError:
                pass
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    # -- beyond the contract ---------------------------------------------------------

    def usage(self) -> StoreUsage:
        """Rows and frame bytes in the store (exact, kept by triggers)."""
        entries, size = self._read("usage", _USAGE, ())[0]
        return StoreUsage(int(entries), int(size))

    def purge_expired(self) -> int:
        """Delete the expired rows now (they are purged lazily otherwise); how many."""
        now = self._clock()
        return self._write("purge", lambda conn: conn.execute(_PURGE, (now,)).rowcount)

    def flush_access_times(self) -> None:
        """Write the access times batched in memory now."""
        self._flush_touches_now(wait=True)

    @classmethod
    def open(cls, path: str | os.PathLike[str], **options: Any) -> SQLiteTier:
        """The tier on the file ``path``: the same as ``SQLiteTier(path, **options)``, the
        synchronous form of :meth:`AsyncSQLiteTier.open`."""
        return cls(path, **options)

    def __enter__(self) -> SQLiteTier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteTier({str(self.path)!r}, maxbytes={self._maxbytes!r})"


_LIVE_TIERS: weakref.WeakSet[SQLiteTier] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for tier in list(_LIVE_TIERS):
        tier._forget_connections()


if hasattr(os, "register_at_fork"):
    # Note that this replaces a getpid() check on every call: forks are rare, calls not.
    os.register_at_fork(after_in_child=_after_fork_in_child)


class AsyncSQLiteTier:
    """The asyncio twin of :class:`SQLiteTier`: the same store, awaited.

    Each call runs the synchronous tier on a private pool of ``workers`` threads. Note
    that this is deliberate rather than aiosqlite: the synchronous tier is already safe
    for many threads and keeps one connection per concurrent call, so concurrent reads
    run in parallel in WAL mode, whereas aiosqlite funnels every call of a connection
    through one thread; and it adds no dependency. Opening the file happens in the
    constructor (a quick, blocking step); use :meth:`open` to do it off the event loop.
    """

    def __init__(self, path: str | os.PathLike[str], *, workers: int = 4, **options: Any) -> None:
        self._sync = SQLiteTier(path, **options)
        self.name = self._sync.name
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="novacache-sqlite"
        )
        self._closed = False

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, workers: int = 4, **options: Any
    ) -> AsyncSQLiteTier:
        """Build the tier with the file opened in a worker thread."""
        return await asyncio.to_thread(cls, path, workers=workers, **options)

    @property
    def sync(self) -> SQLiteTier:
        """The synchronous tier underneath (same file, same connections)."""
        return self._sync

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def get(self, key: str) -> bytes | None:
        """See :meth:`SQLiteTier.get`."""
        return await self._run(self._sync.get, key)

    async def set(self, key: str, frame: bytes, ttl: float | None = None) -> None:
        """See :meth:`SQLiteTier.set`."""
        check_key(key)
        check_frame(frame)
        check_ttl(ttl)
        await self._run(self._sync.set, key, frame, ttl)

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """See :meth:`SQLiteTier.get_many`."""
        return await self._run(self._sync.get_many, check_keys(keys))

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """See :meth:`SQLiteTier.set_many`."""
        await self._run(self._sync.set_many, dict(items), ttl)

    async def set_if(
        self, key: str, frame: bytes, ttl: float | None = None, *, expect: bytes | None
    ) -> bool:
        """See :meth:`SQLiteTier.set_if`."""
        check_key(key)
        check_frame(frame)
        check_ttl(ttl)
        return await self._run(lambda: self._sync.set_if(key, frame, ttl, expect=expect))

    async def set_if_many(
        self, items: Mapping[str, tuple[bytes, float | None, bytes | None]]
    ) -> builtins.set[str]:
        """See :meth:`SQLiteTier.set_if_many`."""
        return await self._run(self._sync.set_if_many, dict(items))

    async def tombstone_many(self, keys: Iterable[str], frame: bytes, ttl: float) -> int:
        """See :meth:`SQLiteTier.tombstone_many`."""
        return await self._run(self._sync.tombstone_many, check_keys(keys), frame, ttl)

    async def tombstone_groups(
        self, groups: Sequence[Iterable[str]], frame: bytes, ttl: float
    ) -> list[int]:
        """See :meth:`SQLiteTier.tombstone_groups` (one worker-thread call for them all)."""
        return await self._run(
            self._sync.tombstone_groups, [check_keys(g) for g in groups], frame, ttl
        )

    async def delete(self, key: str) -> bool:
        """See :meth:`SQLiteTier.delete`."""
        return await self._run(self._sync.delete, key)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """See :meth:`SQLiteTier.delete_many`."""
        return await self._run(self._sync.delete_many, check_keys(keys))

    async def ttl(self, key: str) -> float | None:
        """See :meth:`SQLiteTier.ttl`."""
        return await self._run(self._sync.ttl, key)

    async def scan(self, pattern: str = "*") -> AsyncIterator[str]:
        """See :meth:`SQLiteTier.scan`; each page is read in a worker thread."""
        if not isinstance(pattern, str):
            raise TypeError("pattern must be a str")
        pages = self._sync._scan_pages(pattern)
        while True:
            page = await self._run(next, pages, None)
            if page is None:
                return
            for key in page:
                yield key

    async def clear(self) -> None:
        """See :meth:`SQLiteTier.clear`."""
        await self._run(self._sync.clear)

    async def ping(self) -> float:
        """See :meth:`SQLiteTier.ping`."""
        return await self._run(self._sync.ping)

    async def close(self) -> None:
        """Close the store and stop the worker threads; harmless twice."""
        if self._closed:
            return
        self._closed = True
        await self._run(self._sync.close)
        self._executor.shutdown(wait=False)

    async def usage(self) -> StoreUsage:
        """See :meth:`SQLiteTier.usage`."""
        return await self._run(self._sync.usage)

    async def __aenter__(self) -> AsyncSQLiteTier:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
