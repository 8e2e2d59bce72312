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

from ._async.postgres import AsyncPostgresTier
from ._pg_base import MAX_FRAME_BYTES
from ._sync.postgres import PostgresTier

__all__ = ["MAX_FRAME_BYTES", "AsyncPostgresTier", "PostgresTier"]
